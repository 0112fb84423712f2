package models_test

import (
	"context"
	"time"

	"github.com/ladder-ml/ladder/models"
	"github.com/ladder-ml/ladder/tensor"
)

// The API is the same with cgo and without (nocgo.go): this file builds
// in both, so a signature that drifts in one of them fails to compile.
var (
	_ func(string) error                                                                            = models.InitRuntime
	_ func() error                                                                                  = models.ShutdownRuntime
	_ func() string                                                                                 = models.RuntimeLibrary
	_ func(string, models.Options) (*models.Model, error)                                           = models.Load
	_ func([]byte, models.Options) (*models.Model, error)                                           = models.LoadBytes
	_ func(*models.Model) string                                                                    = (*models.Model).Name
	_ func(*models.Model) string                                                                    = (*models.Model).Version
	_ func(*models.Model) tensor.Signature                                                          = (*models.Model).Signature
	_ func(*models.Model, context.Context, []tensor.Tensor) ([]tensor.Tensor, error)                = (*models.Model).Predict
	_ func(*models.Model, context.Context, time.Duration, []tensor.Tensor) ([]tensor.Tensor, error) = (*models.Model).PredictTimeout
	_ func(*models.Model, context.Context) error                                                    = (*models.Model).Warmup
	_ func(*models.Model) error                                                                     = (*models.Model).Close
)
