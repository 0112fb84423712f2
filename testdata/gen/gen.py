#!/usr/bin/python3
"""Generate the ONNX test models and data sets committed under testdata/.

Run from the repository root (this is what `make testdata` does):

    /usr/bin/python3 testdata/gen/gen.py

Requires Debian's python3-onnx, python3-sklearn and python3-numpy (no
skl2onnx, no onnxruntime: every graph is built by hand with onnx.helper from
trained scikit-learn weights). All randomness uses fixed seeds, so running it
again reproduces the same files (byte-identical on the same library versions).

Every model uses opset 13 (ai.onnx) and IR version 8, producer_name
"ladder-testdata", model_version 1, and metadata_props {"task", "role"}.
"N" is a dynamic batch dimension.

Files written (paths relative to testdata/):

  train.csv, heldout.csv
      scikit-learn's bundled breast-cancer data (569 rows, 30 features),
      stratified 70/30 split (random_state=42). Header `label,f0,...,f29`;
      label is sklearn's target (1 = benign); features written with repr()
      so they round-trip exactly.

  primary.onnx   features float32 [N,30] -> probability float32 [N,1]
      MLPClassifier (hidden 32,16, relu) trained on standardized train rows.
      Standardization (Sub mean, Div scale) is inside the graph, so the input
      is the raw feature row. Output is P(label == 1). role "primary".

  backup.onnx    features float32 [N,30] -> probability float32 [N,1]
      LogisticRegression on the same standardized data; same I/O. role "backup".

  medium.onnx    features float32 [N,30] -> probability float32 [N,1]
      Synthetic compute load (~0.5 ms per single row with 1 intra-op thread):
      each row is standardized, projected 30->256, expanded into an internal
      [N,M,256] batch, pushed through one shared random 256x256 matrix K times
      with Tanh in between, mean-pooled, projected to 1 and passed through
      Sigmoid. Values are meaningless but finite and strictly inside (0,1).
      A single shared initializer keeps the file small. role "medium".

  slow.onnx      features float32 [N,30] -> probability float32 [N,1]
      Same construction as medium with many more steps: hundreds of small
      sequential nodes (each well under ~1 ms) adding up to roughly 40-100 ms
      per single-row run, so ONNX Runtime's RunOptions terminate flag (checked
      between nodes) stops a run within a few ms. For cancellation tests.
      role "slow".

  nan.onnx       features float32 [N,30] -> probability float32 [N,1]
      The backup logistic regression, except the output is NaN for every row
      whose raw f0 (mean radius) is > 15.0 (Where with a NaN constant).
      role "nan".

  multi_io.onnx  a float32 [N,3], b int64 [N,2]
                 -> sum_a float32 [N,1] (row sum of a),
                    sum_b int64 [N,1] (row sum of b). role "multi_io".

  int64_input.onnx  ids int64 [N,4] -> score float64 [N,1] = 0.5 * row sum.
      role "int64_input".

  types.onnx     f64 float64 [N], i32 int32 [N], flag bool [N], text string [N]
                 -> f64_out = f64*2, i32_out = i32+1, flag_out = Not(flag),
                    text_out = Identity(text). role "types".

  corrupt.onnx   4096 deterministic pseudo-random bytes; not a valid model.
  truncated.onnx the first half (len//2 bytes) of primary.onnx.

  Edge-case models for the models package (scalars.onnx, no_input.onnx,
  dynamic.onnx, small_ints.onnx, half.onnx, half_scalar.onnx,
  string_scalar.onnx, reshape.onnx, int_div.onnx, kernel_guards.onnx,
  external.onnx (+ external.onnx.data), any_rank.onnx, half_expand.onnx,
  unversioned.onnx, and the refused half_huge.onnx,
  unknown_op.onnx, training_op.onnx, unimplemented_type.onnx,
  bad_attribute.onnx, complex.onnx, sequence.onnx): see edge_models() and
  testdata/README.md. `gen.py edge` writes only these.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

OPSET = 13
IR_VERSION = 8
SEED = 42

# Synthetic-load parameters: internal batch M and number of shared-matrix steps K.
MEDIUM_M, MEDIUM_K = 32, 12
SLOW_M, SLOW_K = 256, 200

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FLOAT_FEATURES = ["features"]


def path(name):
    return os.path.join(OUT, name)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def make_model(graph, role, doc):
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="ladder-testdata",
        producer_version="1",
        model_version=1,
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"task": "breast-cancer", "role": role})
    onnx.checker.check_model(model, full_check=True)
    return model


def save(model, name):
    data = model.SerializeToString()
    with open(path(name), "wb") as f:
        f.write(data)
    print(f"wrote {name} ({len(data)} bytes)")
    return data


def features_io():
    inp = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 30])
    out = helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1])
    return inp, out


def standardize_nodes(scaler, inits, nodes, src="features", dst="std"):
    inits += [
        numpy_helper.from_array(f32(scaler.mean_), "scaler_mean"),
        numpy_helper.from_array(f32(scaler.scale_), "scaler_scale"),
    ]
    nodes += [
        helper.make_node("Sub", [src, "scaler_mean"], ["centered"]),
        helper.make_node("Div", ["centered", "scaler_scale"], [dst]),
    ]


def write_csv(name, X, y):
    with open(path(name), "w") as f:
        f.write("label," + ",".join(f"f{i}" for i in range(X.shape[1])) + "\n")
        for label, row in zip(y, X):
            f.write(str(int(label)) + "," + ",".join(repr(float(v)) for v in row) + "\n")
    print(f"wrote {name} ({len(y)} rows)")


# --------------------------------------------------------------------------
# Models


def mlp_model(scaler, mlp):
    inits, nodes = [], []
    standardize_nodes(scaler, inits, nodes)
    cur = "std"
    n_layers = len(mlp.coefs_)
    for i, (W, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        inits += [
            numpy_helper.from_array(f32(W), f"W{i}"),
            numpy_helper.from_array(f32(b), f"b{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [cur, f"W{i}"], [f"mm{i}"]),
            helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"z{i}"]),
        ]
        if i < n_layers - 1:
            nodes.append(helper.make_node("Relu", [f"z{i}"], [f"h{i}"]))
            cur = f"h{i}"
        else:
            nodes.append(helper.make_node("Sigmoid", [f"z{i}"], ["probability"]))
    inp, out = features_io()
    g = helper.make_graph(nodes, "primary_mlp", [inp], [out], inits)
    return make_model(
        g, "primary",
        "Breast-cancer MLPClassifier(32,16,relu) with in-graph standardization; "
        "output is P(label==1) (benign).")


def logreg_nodes(scaler, lr, inits, nodes, dst="probability"):
    standardize_nodes(scaler, inits, nodes)
    inits += [
        numpy_helper.from_array(f32(lr.coef_.T), "lr_coef"),       # [30,1]
        numpy_helper.from_array(f32(lr.intercept_), "lr_intercept"),  # [1]
    ]
    nodes += [
        helper.make_node("MatMul", ["std", "lr_coef"], ["lr_mm"]),
        helper.make_node("Add", ["lr_mm", "lr_intercept"], ["lr_logit"]),
        helper.make_node("Sigmoid", ["lr_logit"], [dst]),
    ]


def logreg_model(scaler, lr):
    inits, nodes = [], []
    logreg_nodes(scaler, lr, inits, nodes)
    inp, out = features_io()
    g = helper.make_graph(nodes, "backup_logreg", [inp], [out], inits)
    return make_model(
        g, "backup",
        "Breast-cancer LogisticRegression with in-graph standardization; "
        "output is P(label==1) (benign).")


def nan_model(scaler, lr):
    inits, nodes = [], []
    logreg_nodes(scaler, lr, inits, nodes, dst="lr_prob")
    inits += [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "f0_index"),
        numpy_helper.from_array(f32(15.0), "f0_threshold"),
        numpy_helper.from_array(f32(np.nan), "nan_value"),
    ]
    nodes += [
        helper.make_node("Gather", ["features", "f0_index"], ["f0"], axis=1),  # [N,1]
        helper.make_node("Greater", ["f0", "f0_threshold"], ["f0_big"]),
        helper.make_node("Where", ["f0_big", "nan_value", "lr_prob"], ["probability"]),
    ]
    inp, out = features_io()
    g = helper.make_graph(nodes, "nan_logreg", [inp], [out], inits)
    return make_model(
        g, "nan",
        "The backup LogisticRegression, but the output is NaN whenever raw f0 "
        "(mean radius) > 15.0.")


def load_model(scaler, M, K, role, seed):
    """Synthetic compute load; one shared 256x256 weight applied K times."""
    rng = np.random.RandomState(seed)
    H = 256
    inits, nodes = [], []
    standardize_nodes(scaler, inits, nodes)
    inits += [
        numpy_helper.from_array(f32(rng.randn(30, H) / np.sqrt(30)), "proj_in"),
        numpy_helper.from_array(f32(rng.randn(H, H) / np.sqrt(H)), "W_shared"),
        numpy_helper.from_array(f32(rng.randn(H, 1) / np.sqrt(H)), "proj_out"),
        numpy_helper.from_array(np.array([0, 1, H], dtype=np.int64), "unsq_shape"),
        numpy_helper.from_array(np.array([1, M, 1], dtype=np.int64), "expand_shape"),
    ]
    nodes += [
        helper.make_node("MatMul", ["std", "proj_in"], ["p0"]),
        helper.make_node("Tanh", ["p0"], ["p1"]),                       # [N,256]
        helper.make_node("Reshape", ["p1", "unsq_shape"], ["p2"]),      # [N,1,256]
        helper.make_node("Expand", ["p2", "expand_shape"], ["h0"]),     # [N,M,256]
    ]
    cur = "h0"
    for k in range(K):
        nodes += [
            helper.make_node("MatMul", [cur, "W_shared"], [f"m{k}"]),
            helper.make_node("Tanh", [f"m{k}"], [f"h{k + 1}"]),
        ]
        cur = f"h{k + 1}"
    nodes += [
        helper.make_node("ReduceMean", [cur], ["pooled"], axes=[1], keepdims=0),  # [N,256]
        helper.make_node("MatMul", ["pooled", "proj_out"], ["logit"]),             # [N,1]
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
    ]
    inp, out = features_io()
    g = helper.make_graph(nodes, f"{role}_load", [inp], [out], inits)
    return make_model(
        g, role,
        f"Synthetic load model ({role}): random weights, internal batch {M}, "
        f"{K} applications of one shared 256x256 matrix with Tanh. Output is a "
        "meaningless but finite probability in (0,1).")


def multi_io_model():
    inits = [numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")]
    nodes = [
        helper.make_node("ReduceSum", ["a", "axis1"], ["sum_a"], keepdims=1),
        helper.make_node("ReduceSum", ["b", "axis1"], ["sum_b"], keepdims=1),
    ]
    g = helper.make_graph(
        nodes, "multi_io",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("b", TensorProto.INT64, ["N", 2])],
        [helper.make_tensor_value_info("sum_a", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("sum_b", TensorProto.INT64, ["N", 1])],
        inits)
    return make_model(g, "multi_io", "sum_a = row sum of a (float32); sum_b = row sum of b (int64).")


def int64_input_model():
    inits = [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(0.5, dtype=np.float64), "half"),
    ]
    nodes = [
        helper.make_node("Cast", ["ids"], ["ids_f64"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", ["ids_f64", "axis1"], ["ids_sum"], keepdims=1),
        helper.make_node("Mul", ["ids_sum", "half"], ["score"]),
    ]
    g = helper.make_graph(
        nodes, "int64_input",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 4])],
        [helper.make_tensor_value_info("score", TensorProto.DOUBLE, ["N", 1])],
        inits)
    return make_model(g, "int64_input", "score (float64) = 0.5 * row sum of ids (int64).")


def types_model():
    inits = [
        numpy_helper.from_array(np.array(2.0, dtype=np.float64), "two"),
        numpy_helper.from_array(np.array(1, dtype=np.int32), "one"),
    ]
    nodes = [
        helper.make_node("Mul", ["f64", "two"], ["f64_out"]),
        helper.make_node("Add", ["i32", "one"], ["i32_out"]),
        helper.make_node("Not", ["flag"], ["flag_out"]),
        helper.make_node("Identity", ["text"], ["text_out"]),
    ]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(
        nodes, "types",
        [vi("f64", TensorProto.DOUBLE, ["N"]), vi("i32", TensorProto.INT32, ["N"]),
         vi("flag", TensorProto.BOOL, ["N"]), vi("text", TensorProto.STRING, ["N"])],
        [vi("f64_out", TensorProto.DOUBLE, ["N"]), vi("i32_out", TensorProto.INT32, ["N"]),
         vi("flag_out", TensorProto.BOOL, ["N"]), vi("text_out", TensorProto.STRING, ["N"])],
        inits)
    return make_model(g, "types", "f64_out=f64*2, i32_out=i32+1, flag_out=Not(flag), text_out=text.")


# --------------------------------------------------------------------------
# Edge-case models for the models package: scalars, every element type, data-
# dependent shapes, no inputs, and graphs ONNX Runtime refuses for different
# reasons. They are written by edge_models(), apart from the models above, so
# adding one never churns the committed bytes of another.


def edge_model(graph, role, doc, check=True, version=True, opsets=None):
    model = helper.make_model(
        graph,
        opset_imports=opsets or [helper.make_opsetid("", OPSET)],
        producer_name="ladder-testdata",
        producer_version="1",
        doc_string=doc,
    )
    if version:
        model.model_version = 1
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"task": "edge", "role": role})
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model


def scalars_model():
    """x float32 [N,3], rate int64 [] -> scaled float32 [N,3], total float32 []."""
    vi = helper.make_tensor_value_info
    nodes = [
        helper.make_node("Cast", ["rate"], ["rate_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "rate_f"], ["scaled"]),
        helper.make_node("ReduceSum", ["scaled"], ["total"], keepdims=0),
    ]
    g = helper.make_graph(
        nodes, "scalars",
        [vi("x", TensorProto.FLOAT, ["N", 3]), vi("rate", TensorProto.INT64, [])],
        [vi("scaled", TensorProto.FLOAT, ["N", 3]), vi("total", TensorProto.FLOAT, [])])
    return edge_model(g, "scalars", "scaled = x * rate; total = sum(scaled), a scalar. "
                      "rate is a scalar int64, like a voice detector's sample rate.")


def no_input_model():
    nodes = [helper.make_node("Constant", [], ["c"],
                              value=numpy_helper.from_array(f32([1.5, -2.5]), "c_value"))]
    g = helper.make_graph(nodes, "no_input", [],
                          [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    return edge_model(g, "no_input", "No inputs; c is the constant [1.5, -2.5].")


def dynamic_model():
    """x float32 [N] -> positive float32 [M]: the elements of x above 0."""
    inits = [numpy_helper.from_array(f32(0.0), "zero")]
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["mask"]),
        helper.make_node("Compress", ["x", "mask"], ["positive"], axis=0),
    ]
    g = helper.make_graph(
        nodes, "dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("positive", TensorProto.FLOAT, ["M"])],
        inits)
    return edge_model(g, "dynamic", "positive = the elements of x above 0: "
                      "the output's length depends on the data.")


SMALL_INTS = [("i8", TensorProto.INT8), ("u8", TensorProto.UINT8), ("i16", TensorProto.INT16),
              ("u16", TensorProto.UINT16), ("u32", TensorProto.UINT32), ("u64", TensorProto.UINT64)]


def small_ints_model():
    """Each of i8 u8 i16 u16 u32 u64 [N] -> <name>_out = reversed(input) (same type)."""
    vi = helper.make_tensor_value_info
    inits = [numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0")]
    nodes, ins, outs = [], [], []
    for name, t in SMALL_INTS:
        # ReverseSequence needs a batch axis; flip through Slice with step -1.
        nodes.append(helper.make_node("Slice", [name, "flip_start", "flip_end", "axis0", "flip_step"],
                                      [name + "_out"]))
        ins.append(vi(name, t, ["N"]))
        outs.append(vi(name + "_out", t, ["N"]))
    inits += [
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flip_start"),
        numpy_helper.from_array(np.array([np.iinfo(np.int64).min], dtype=np.int64), "flip_end"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flip_step"),
    ]
    g = helper.make_graph(nodes, "small_ints", ins, outs, inits)
    return edge_model(g, "small_ints", "Each output is its input reversed, in the same "
                      "element type: int8, uint8, int16, uint16, uint32, uint64.")


def half_model():
    """h float16 [N,2], b bfloat16 [N,2]
    -> h2 float16 [N,2] = 2*h, b2 bfloat16 [N,2] = 2*b, hs float16 [2] = h[0] + 1 (static),
       sum float32 [N] = row sums of h + b (in float32)."""
    vi = helper.make_tensor_value_info
    inits = [
        numpy_helper.from_array(f32(2.0), "two"),
        numpy_helper.from_array(f32(1.0), "one"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "first"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "two_shape"),
    ]
    nodes = [
        helper.make_node("Cast", ["h"], ["h_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["b"], ["b_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["h_f", "two"], ["h2_f"]),
        helper.make_node("Mul", ["b_f", "two"], ["b2_f"]),
        helper.make_node("Cast", ["h2_f"], ["h2"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["b2_f"], ["b2"], to=TensorProto.BFLOAT16),
        helper.make_node("Gather", ["h_f", "first"], ["h_row0"], axis=0),  # [1,2]
        helper.make_node("Reshape", ["h_row0", "two_shape"], ["h_row0_flat"]),
        helper.make_node("Add", ["h_row0_flat", "one"], ["hs_f"]),
        helper.make_node("Cast", ["hs_f"], ["hs"], to=TensorProto.FLOAT16),
        helper.make_node("Add", ["h_f", "b_f"], ["hb_f"]),
        helper.make_node("ReduceSum", ["hb_f", "axis1"], ["sum"], keepdims=0),
    ]
    g = helper.make_graph(
        nodes, "half",
        [vi("h", TensorProto.FLOAT16, ["N", 2]), vi("b", TensorProto.BFLOAT16, ["N", 2])],
        [vi("h2", TensorProto.FLOAT16, ["N", 2]), vi("b2", TensorProto.BFLOAT16, ["N", 2]),
         vi("hs", TensorProto.FLOAT16, [2]), vi("sum", TensorProto.FLOAT, ["N"])],
        inits)
    return edge_model(g, "half", "h2 = 2h (float16), b2 = 2b (bfloat16), hs = h[0] + 1 "
                      "(float16, static shape), sum = row sums of h + b (float32).")


def string_scalar_model():
    """text string [N] -> first string [] = text[0]."""
    vi = helper.make_tensor_value_info
    inits = [numpy_helper.from_array(np.array(0, dtype=np.int64), "zero_index")]
    nodes = [helper.make_node("Gather", ["text", "zero_index"], ["first"], axis=0)]
    g = helper.make_graph(nodes, "string_scalar", [vi("text", TensorProto.STRING, ["N"])],
                          [vi("first", TensorProto.STRING, [])], inits)
    return edge_model(g, "string_scalar", "first = text[0], a scalar string.")


def unversioned_model():
    """backup-like identity without model_version: y float32 [N] = x."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "unversioned",
                          [vi("x", TensorProto.FLOAT, ["N"])], [vi("y", TensorProto.FLOAT, ["N"])])
    return edge_model(g, "unversioned", "y = x; no model_version in the file.", version=False)


def unknown_op_model():
    """An operator no ONNX Runtime implements (domain com.example)."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
                          "unknown_op", [vi("x", TensorProto.FLOAT, ["N"])],
                          [vi("y", TensorProto.FLOAT, ["N"])])
    return edge_model(g, "unknown_op", "y = com.example.Frobnicate(x), which nothing implements.",
                      check=False, opsets=[helper.make_opsetid("", OPSET),
                                           helper.make_opsetid("com.example", 1)])


def unimplemented_type_model():
    """A standard operator ONNX Runtime's CPU provider lacks for this type:
    Sqrt on int32 is not in the ONNX spec either, so use Det on float16."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Det", ["x"], ["y"])], "unimplemented_type",
                          [vi("x", TensorProto.DOUBLE, [2, 2])], [vi("y", TensorProto.DOUBLE, [])])
    return edge_model(g, "unimplemented_type", "y = Det(x) on float64, a type ONNX Runtime's "
                      "CPU provider does not implement Det for.", check=False)


def training_op_model():
    """A training-only operator (ai.onnx.preview.training Adagrad)."""
    vi = helper.make_tensor_value_info
    node = helper.make_node("Adagrad", ["r", "t", "x", "g", "h"], ["x_new", "h_new"],
                            domain="ai.onnx.preview.training")
    g = helper.make_graph(
        [node], "training_op",
        [vi("r", TensorProto.FLOAT, []), vi("t", TensorProto.INT64, []),
         vi("x", TensorProto.FLOAT, [2]), vi("g", TensorProto.FLOAT, [2]), vi("h", TensorProto.FLOAT, [2])],
        [vi("x_new", TensorProto.FLOAT, [2]), vi("h_new", TensorProto.FLOAT, [2])])
    return edge_model(g, "training_op", "One Adagrad step: a training-only operator.", check=False,
                      opsets=[helper.make_opsetid("", OPSET),
                              helper.make_opsetid("ai.onnx.preview.training", 1)])


def bad_attribute_model():
    """Relu with an attribute the operator does not define."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], slope=0.5)], "bad_attribute",
                          [vi("x", TensorProto.FLOAT, ["N"])], [vi("y", TensorProto.FLOAT, ["N"])])
    return edge_model(g, "bad_attribute", "Relu with an undefined attribute `slope`.", check=False)


def complex_model():
    """x complex64 [N] -> y complex64 [N]: an element type ladder does not carry."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "complex",
                          [vi("x", TensorProto.COMPLEX64, ["N"])], [vi("y", TensorProto.COMPLEX64, ["N"])])
    return edge_model(g, "complex", "y = x in complex64.", check=False)


def half_scalar_model():
    """x float16 [N] -> total float16 []: a scalar float16 output ladder refuses."""
    vi = helper.make_tensor_value_info
    nodes = [
        helper.make_node("Cast", ["x"], ["x_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["x_f"], ["total_f"], keepdims=0),
        helper.make_node("Cast", ["total_f"], ["total"], to=TensorProto.FLOAT16),
    ]
    g = helper.make_graph(nodes, "half_scalar", [vi("x", TensorProto.FLOAT16, ["N"])],
                          [vi("total", TensorProto.FLOAT16, [])])
    return edge_model(g, "half_scalar", "total = sum(x), a scalar float16.")


def reshape_model():
    """x float32 [N], shape int64 [2] -> y float32 [A,B] = Reshape(x, shape).
    Zero-valued inputs make ONNX Runtime refuse the run: warm it with examples."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "reshape",
                          [vi("x", TensorProto.FLOAT, ["N"]), vi("shape", TensorProto.INT64, [2])],
                          [vi("y", TensorProto.FLOAT, ["A", "B"])])
    return edge_model(g, "reshape", "y = Reshape(x, shape); a zero shape is refused.")


def sequence_model():
    """x float32 [N] -> seq sequence<float32>: an output that is not a tensor."""
    vi = helper.make_tensor_value_info
    seq = helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("SequenceConstruct", ["x", "x"], ["seq"])], "sequence",
                          [vi("x", TensorProto.FLOAT, ["N"])], [seq])
    return edge_model(g, "sequence", "seq = [x, x], a sequence of tensors.")


def int_div_model():
    """a int32 [N], b int32 [N] -> q int32 [N] = Div(a, b). ONNX Runtime's
    integer Div kills the process with SIGFPE on a zero divisor, so a
    warm-up on zeros must never reach it."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Div", ["a", "b"], ["q"])], "int_div",
                          [vi("a", TensorProto.INT32, ["N"]), vi("b", TensorProto.INT32, ["N"])],
                          [vi("q", TensorProto.INT32, ["N"])])
    return edge_model(g, "int_div", "q = a / b on int32; a zero divisor crashes ONNX Runtime.")


def kernel_guards_model():
    """Four operators whose ONNX Runtime kernels crash the process on some
    input values, each fed straight from graph inputs:
    t = Trilu(m, k); r = RoiAlign(X, rois, batch_indices);
    rs = ReverseSequence(s, lens); up = MaxUnpool(u, ui)."""
    vi = helper.make_tensor_value_info
    F, I = TensorProto.FLOAT, TensorProto.INT64
    nodes = [
        helper.make_node("Trilu", ["m", "k"], ["t"]),
        helper.make_node("RoiAlign", ["X", "rois", "batch_indices"], ["r"],
                         output_height=2, output_width=2),
        helper.make_node("ReverseSequence", ["s", "lens"], ["rs"], time_axis=0, batch_axis=1),
        helper.make_node("MaxUnpool", ["u", "ui"], ["up"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    g = helper.make_graph(nodes, "kernel_guards",
                          [vi("m", F, [3, 4]), vi("k", I, []),
                           vi("X", F, ["N", 1, 4, 4]), vi("rois", F, ["K", 4]), vi("batch_indices", I, ["K"]),
                           vi("s", F, ["T", 2]), vi("lens", I, [2]),
                           vi("u", F, [1, 1, 2, 2]), vi("ui", I, [1, 1, 2, 2])],
                          [vi("t", F, [3, 4]), vi("r", F, ["K", 1, 2, 2]),
                           vi("rs", F, ["T", 2]), vi("up", F, [1, 1, 4, 4])])
    return edge_model(g, "kernel_guards", "Trilu, RoiAlign, ReverseSequence and MaxUnpool on "
                      "graph inputs: values that crash ONNX Runtime are refused in Go.",
                      opsets=[helper.make_opsetid("", 16)])


def external_model():
    """x float32 [N,3] -> y = x + w, where w = [1, 2, 3] is kept as external
    data in external.onnx.data, as exporters do for models over 2 GB."""
    vi = helper.make_tensor_value_info
    w = numpy_helper.from_array(np.array([1, 2, 3], dtype=np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "external.onnx.data"), ("offset", "0"), ("length", "12")):
        e = w.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "external",
                          [vi("x", TensorProto.FLOAT, ["N", 3])], [vi("y", TensorProto.FLOAT, ["N", 3])], [w])
    with open(path("external.onnx.data"), "wb") as f:
        f.write(np.array([1, 2, 3], dtype=np.float32).tobytes())
    return edge_model(g, "external", "y = x + w; w lives in external.onnx.data.", check=False)


def any_rank_model():
    """Inputs and outputs whose rank the file does not declare, which ONNX
    Runtime reports like scalars: y = Reshape(x, shape) and hy =
    Reshape(h, hshape) take the rank the request gives; z = Identity(a)
    and t = Identity(text) take a and text of any rank."""
    vi = helper.make_tensor_value_info
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
        helper.make_node("Reshape", ["h", "hshape"], ["hy"]),
        helper.make_node("Identity", ["a"], ["z"]),
        helper.make_node("Identity", ["text"], ["t"]),
    ]
    g = helper.make_graph(nodes, "any_rank",
                          [vi("x", TensorProto.FLOAT, ["N"]), vi("shape", TensorProto.INT64, ["R"]),
                           vi("h", TensorProto.FLOAT16, ["M"]), vi("hshape", TensorProto.INT64, ["S"]),
                           vi("a", TensorProto.INT32, None), vi("text", TensorProto.STRING, None)],
                          [vi("y", TensorProto.FLOAT, None), vi("hy", TensorProto.FLOAT16, None),
                           vi("z", TensorProto.INT32, None), vi("t", TensorProto.STRING, None)])
    return edge_model(g, "any_rank", "y = Reshape(x, shape), hy = Reshape(h, hshape), z = a, t = text; "
                      "no rank declared for a, text, y, hy, z and t.", check=False)


def half_huge_model():
    """h float16 [N] -> y float16 declared [2**34] = h: a declared shape
    ladder would have to allocate (32 GiB) before every run."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Identity", ["h"], ["y"])], "half_huge",
                          [vi("h", TensorProto.FLOAT16, ["N"])], [vi("y", TensorProto.FLOAT16, [2**34])])
    return edge_model(g, "half_huge", "y = h, declared far larger than it is.", check=False)


def half_expand_model():
    """h float16 [N], shape int64 [2] -> y float16 [A,B] = Expand(h, shape):
    the request decides how large the output is."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Expand", ["h", "shape"], ["y"])], "half_expand",
                          [vi("h", TensorProto.FLOAT16, ["N"]), vi("shape", TensorProto.INT64, [2])],
                          [vi("y", TensorProto.FLOAT16, ["A", "B"])])
    return edge_model(g, "half_expand", "y = Expand(h, shape) in float16.")


def edge_models():
    save(scalars_model(), "scalars.onnx")
    save(no_input_model(), "no_input.onnx")
    save(dynamic_model(), "dynamic.onnx")
    save(small_ints_model(), "small_ints.onnx")
    save(half_model(), "half.onnx")
    save(string_scalar_model(), "string_scalar.onnx")
    save(unversioned_model(), "unversioned.onnx")
    save(unknown_op_model(), "unknown_op.onnx")
    save(unimplemented_type_model(), "unimplemented_type.onnx")
    save(training_op_model(), "training_op.onnx")
    save(bad_attribute_model(), "bad_attribute.onnx")
    save(complex_model(), "complex.onnx")
    save(half_scalar_model(), "half_scalar.onnx")
    save(reshape_model(), "reshape.onnx")
    save(sequence_model(), "sequence.onnx")
    save(int_div_model(), "int_div.onnx")
    save(kernel_guards_model(), "kernel_guards.onnx")
    save(external_model(), "external.onnx")
    save(any_rank_model(), "any_rank.onnx")
    save(half_huge_model(), "half_huge.onnx")
    save(half_expand_model(), "half_expand.onnx")


# --------------------------------------------------------------------------


def main():
    if sys.argv[1:] == ["edge"]:
        edge_models()  # only the edge-case models; leaves the others untouched
        return

    data = load_breast_cancer()
    X, y = data.data, data.target
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=SEED)
    write_csv("train.csv", X_tr, y_tr)
    write_csv("heldout.csv", X_te, y_te)

    scaler = StandardScaler().fit(X_tr)
    S_tr, S_te = scaler.transform(X_tr), scaler.transform(X_te)

    mlp = MLPClassifier(hidden_layer_sizes=(32, 16), activation="relu",
                        max_iter=2000, random_state=0).fit(S_tr, y_tr)
    lr = LogisticRegression(max_iter=5000, random_state=0).fit(S_tr, y_tr)
    acc_mlp, acc_lr = mlp.score(S_te, y_te), lr.score(S_te, y_te)
    print(f"sklearn held-out accuracy: primary (MLP) {acc_mlp:.4f}, backup (LogReg) {acc_lr:.4f}")
    if acc_mlp < 0.95 or acc_lr < 0.95:
        sys.exit("accuracy below 0.95")
    print(f"held-out rows with f0 > 15.0 (NaN in nan.onnx): "
          f"{int((X_te[:, 0] > 15.0).sum())}/{len(X_te)} = {(X_te[:, 0] > 15.0).mean():.4f}")

    primary = save(mlp_model(scaler, mlp), "primary.onnx")
    save(logreg_model(scaler, lr), "backup.onnx")
    save(load_model(scaler, MEDIUM_M, MEDIUM_K, "medium", seed=1), "medium.onnx")
    save(load_model(scaler, SLOW_M, SLOW_K, "slow", seed=2), "slow.onnx")
    save(nan_model(scaler, lr), "nan.onnx")
    save(multi_io_model(), "multi_io.onnx")
    save(int64_input_model(), "int64_input.onnx")
    save(types_model(), "types.onnx")

    with open(path("corrupt.onnx"), "wb") as f:
        f.write(np.random.RandomState(1234).bytes(4096))
    print("wrote corrupt.onnx (4096 bytes)")
    with open(path("truncated.onnx"), "wb") as f:
        f.write(primary[: len(primary) // 2])
    print(f"wrote truncated.onnx ({len(primary) // 2} bytes)")
    edge_models()


if __name__ == "__main__":
    main()
