package models

import (
	"errors"
	"testing"
)

// ONNX Runtime's messages for causes no committed model can reproduce on
// every machine, and the hint each gets.
func TestLoadHintFromMessage(t *testing.T) {
	tests := []struct {
		msg, want string
	}{
		// example_strings.onnx from onnxruntime_go's test data, on a
		// system without the en_US.UTF-8 locale.
		{"Error creating temporary session: Exception during initialization: /onnxruntime_src/onnxruntime/core/providers/cpu/text/string_normalizer.cc:393 " +
			"onnxruntime::string_normalizer::Locale::Locale(const std::string&)::<lambda()> Failed to construct locale with name:en_US.UTF-8:" +
			"locale::facet::_S_create_c_locale name not valid:Please, install necessary language-pack-XX and configure locales", hintLocale},
		// A model with external data, given as bytes.
		{"Error creating temporary session: Exception during initialization: /onnxruntime_src/onnxruntime/core/optimizer/initializer.cc:44 " +
			"onnxruntime::Initializer::Initializer(const onnx::TensorProto&, const std::filesystem::__cxx11::path&) !model_path.empty() was false. " +
			"model_path must not be empty. Ensure that a path is provided when the model is created or loaded.", hintExternal},
	}
	for _, tt := range tests {
		if got := loadHint(errors.New(tt.msg)); got != tt.want {
			t.Errorf("loadHint(%.60q...) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}
