package ladderhttp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ladder-ml/ladder/ladderhttp"
)

// FuzzHandler: any body gets either a 4xx with a JSON error or a 200 with
// a valid answer; never a panic, never a 5xx, never a 200 with an error.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		row,
		`{"vector":[42,1,2,3]}`,
		`{"vector":[1,2,3]}`,
		`{"inputs":{"features":{"dtype":"float32","shape":[2,4],"data":[1,2,3,4,5,6,7,8]}}}`,
		`{"inputs":{"features":{"dtype":"float16","shape":[1,4],"data":[1,2,3,4]}}}`,
		`{"inputs":{"features":{"dtype":"float32","shape":[0,4],"data":[]}}}`,
		`{"inputs":{"features":{"dtype":"float32","shape":[1,4],"data":["NaN",1,2,3]}}}`,
		`{"inputs":{"features":{"dtype":"float32","shape":[],"data":1}}}`,
		`{"inputs":`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(seed))
	}
	l := newLadder(f, ladderOpts{})
	h, err := ladderhttp.New(l.r, ladderhttp.Options{MaxBodyBytes: 4096})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/predict", strings.NewReader(string(body))))
		switch {
		case rec.Code == http.StatusOK:
			var a struct {
				Outputs map[string]json.RawMessage `json:"outputs"`
				Tier    string                     `json:"tier"`
				Error   any                        `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Tier == "" || a.Outputs["probability"] == nil || a.Error != nil {
				t.Fatalf("200 without a valid answer (%v): %s", err, rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			var e errorJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Status != rec.Code || e.Error.Message == "" {
				t.Fatalf("%d without a JSON error (%v): %s", rec.Code, err, rec.Body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
