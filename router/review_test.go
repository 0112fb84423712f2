package router_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/router"
	"github.com/ladder-ml/ladder/tensor"
)

// Models whose optional methods panic: user code that New and Warmup call.
type (
	signaturePanics struct{ router.ModelFunc }
	versionPanics   struct{ router.ModelFunc }
	warmupPanics    struct{ router.ModelFunc }
	// anyRank reports a signature whose output rank is not declared.
	anyRank struct{ router.ModelFunc }
)

func (signaturePanics) Signature() tensor.Signature { panic("signature exploded") }
func (versionPanics) Version() string               { panic("version exploded") }
func (warmupPanics) Warmup(context.Context) error   { panic("warm-up exploded") }
func (anyRank) Signature() tensor.Signature {
	return tensor.Signature{
		Inputs:  []tensor.Info{{Name: "x", DType: tensor.Float32, AnyRank: true}},
		Outputs: []tensor.Info{{Name: "y", DType: tensor.Float32, AnyRank: true}},
	}
}

func answerY(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
	return []tensor.Tensor{tensor.New("y", []int64{1}, []float32{1})}, nil
}

func TestNewSurvivesModelsThatPanicDescribingThemselves(t *testing.T) {
	for name, m := range map[string]router.Model{
		"Signature": signaturePanics{answerY},
		"Version":   versionPanics{answerY},
	} {
		t.Run(name, func(t *testing.T) {
			// Given a model whose own method panics,
			// when a ladder is built on it,
			_, err := router.New(router.Config{Tiers: []router.Tier{{Name: "m", Model: m}}})
			// then New refuses it with an error naming the tier and the panic.
			if !errors.Is(err, router.ErrInvalidConfig) || !errors.Is(err, router.ErrPanic) {
				t.Fatalf("New err = %v, want ErrInvalidConfig and ErrPanic", err)
			}
		})
	}
}

func TestWarmupRecoversAPanic(t *testing.T) {
	r, err := router.New(router.Config{Tiers: []router.Tier{{Name: "m", Model: warmupPanics{answerY}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Warmup(context.Background()); !errors.Is(err, router.ErrPanic) {
		t.Fatalf("Warmup err = %v, want ErrPanic", err)
	}
}

func TestNewRefusesATypedNilModel(t *testing.T) {
	// Given the nil *models.Model of a failed Load,
	var failed *models.Model
	_, err := router.New(router.Config{Tiers: []router.Tier{{Name: "primary", Model: failed}}})
	// then New says so instead of building a ladder that cannot serve.
	if !errors.Is(err, router.ErrInvalidConfig) {
		t.Fatalf("New err = %v, want ErrInvalidConfig", err)
	}
}

func TestAnAnswerWhoseShapeOverflowsIsRefused(t *testing.T) {
	// Given a heuristic that answers a shape of 2^64 elements with no data,
	r, err := router.New(router.Config{
		Outputs: []tensor.Info{{Name: "y", DType: tensor.Float32, Shape: []int64{-1, -1}}},
		Heuristic: func(context.Context, []tensor.Tensor) ([]tensor.Tensor, error) {
			return []tensor.Tensor{tensor.New("y", []int64{1 << 32, 1 << 32}, []float32{})}, nil
		},
		Default: []tensor.Tensor{tensor.New("y", []int64{1, 1}, []float32{0})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// when it is asked,
	a, err := r.Predict(context.Background(), nil)
	// then its answer is refused and the default serves.
	if err != nil || a.Tier != router.RungDefault || !errors.Is(a.Fell[len(a.Fell)-1].Err, router.ErrInvalidOutput) {
		t.Fatalf("got %+v, %v; want the default after the heuristic's answer was refused", a, err)
	}
}

func TestOutputsOfAnyRankAreServed(t *testing.T) {
	// Given a model whose signature leaves its output's rank open,
	r, err := router.New(router.Config{Tiers: []router.Tier{{Name: "m", Model: anyRank{answerY}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// when it answers a rank-1 tensor to a rank-2 input,
	a, err := r.Predict(context.Background(), []tensor.Tensor{tensor.New("x", []int64{1, 1}, []float32{1})})
	// then the answer fits the contract and is served.
	if err != nil || a.Tier != "m" {
		t.Fatalf("got %+v, %v; want m to serve", a, err)
	}
}
