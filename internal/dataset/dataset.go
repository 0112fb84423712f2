// Package dataset reads the labelled rows that ladder's tests, examples and
// benchmark harness score models on (testdata/heldout.csv).
package dataset

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
)

// Set is a table of feature rows with a binary label per row.
type Set struct {
	Rows   [][]float32
	Labels []int
}

// Features returns the number of features per row.
func (s Set) Features() int {
	if len(s.Rows) == 0 {
		return 0
	}
	return len(s.Rows[0])
}

// Load reads a CSV file whose header starts with "label" followed by the
// feature columns.
func Load(path string) (Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return Set{}, err
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return Set{}, fmt.Errorf("dataset: %s: %w", path, err)
	}
	if len(records) < 2 || len(records[0]) < 2 || records[0][0] != "label" {
		return Set{}, fmt.Errorf("dataset: %s: expected a header \"label,f0,...\" and at least one row", path)
	}
	var s Set
	for i, rec := range records[1:] {
		label, err := strconv.Atoi(rec[0])
		if err != nil {
			return Set{}, fmt.Errorf("dataset: %s: row %d: label: %w", path, i+1, err)
		}
		row := make([]float32, len(rec)-1)
		for j, v := range rec[1:] {
			x, err := strconv.ParseFloat(v, 32)
			if err != nil {
				return Set{}, fmt.Errorf("dataset: %s: row %d: column %d: %w", path, i+1, j+1, err)
			}
			row[j] = float32(x)
		}
		s.Rows = append(s.Rows, row)
		s.Labels = append(s.Labels, label)
	}
	return s, nil
}
