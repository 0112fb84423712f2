// Package bare is the baseline that ladderhttp is measured against: a
// plain net/http handler that decodes the same JSON request shape with
// encoding/json, calls one model directly and encodes its outputs. It has
// no ladder, no provenance, no metrics and no logs.
package bare

import (
	"encoding/json"
	"net/http"

	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

type request struct {
	Inputs map[string]struct {
		DType string    `json:"dtype"`
		Shape []int64   `json:"shape"`
		Data  []float32 `json:"data"`
	} `json:"inputs"`
}

type output struct {
	DType string    `json:"dtype"`
	Shape []int64   `json:"shape"`
	Data  []float32 `json:"data"`
}

// Handler serves m, a model of float32 inputs and outputs, as a hand-written
// service would: 400 for a body it cannot decode, 500 for a model error.
func Handler(m router.Model) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var in request
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		inputs := make([]tensor.Tensor, 0, len(in.Inputs))
		for name, t := range in.Inputs {
			inputs = append(inputs, tensor.New(name, t.Shape, t.Data))
		}
		out, err := m.Predict(req.Context(), inputs)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp := map[string]map[string]output{"outputs": {}}
		for _, t := range out {
			d, _ := tensor.Data[float32](t)
			resp["outputs"][t.Name] = output{DType: t.DType().String(), Shape: t.Shape, Data: d}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}
