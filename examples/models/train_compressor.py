"""Trains the example compressor-risk model (examples/models/compressor_risk.onnx).

Features, as examples/compressor_health.sql computes them per sensor over its last 10
readings: avg_temp (degC), max_vib (mm/s), pressure (bar), temp_delta (degC since the previous
reading). The training data imitates weir's generator (machine baselines of 55-80 degC, a slow
upward trend, vibration 1.5-2.5 mm/s with load); the label says whether the compressor failed
within the hour, drawn from a logistic ground truth where heat and vibration both raise the
risk. A logistic regression is enough for the example and runs on tract.

    pip install scikit-learn==1.9.1 skl2onnx==1.20.0
    python3 examples/models/train_compressor.py
"""
import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(7)
n = 20000
avg_temp = rng.uniform(55, 95, n)
max_vib = rng.uniform(1.2, 3.6, n)
pressure = rng.normal(6.0, 0.35, n)
temp_delta = rng.normal(0, 0.8, n)
X = np.stack([avg_temp, max_vib, pressure, temp_delta], axis=1).astype(np.float32)
margin = 0.45 * (avg_temp - 78) + 2.5 * (max_vib - 2.8) + 0.6 * temp_delta
failed = (rng.uniform(0, 1, n) < 1 / (1 + np.exp(-margin))).astype(np.int64)
model = LogisticRegression(max_iter=2000).fit(X, failed)
onx = to_onnx(model, X[:1], options={id(model): {"zipmap": False}},
              target_opset={"": 17, "ai.onnx.ml": 3})
with open("compressor_risk.onnx", "wb") as f:
    f.write(onx.SerializeToString())
print("coefficients", model.coef_, "intercept", model.intercept_)
