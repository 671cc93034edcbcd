"""The baseline: a bare CatBoost script doing the same work as one retrain.

Read the CSV (pandas, pyarrow engine), mark categorical columns, hold out 20 %, fit
500 iterations, predict the holdout, save the model. No validation, versioning,
champion comparison or bookkeeping.

    python bench/bare_catboost.py DATA.csv OUT.cbm [ITERATIONS]
"""

import sys

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool

data, out = sys.argv[1], sys.argv[2]
iterations = int(sys.argv[3]) if len(sys.argv) > 3 else 500
df = pd.read_csv(data, engine="pyarrow")
y = df.pop("target").to_numpy()
cats = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
for c in cats:
    df[c] = df[c].astype(object).where(df[c].notna(), "__missing__").astype(str)
holdout = np.random.default_rng(42).random(len(df)) < 0.2
model = CatBoostClassifier(iterations=iterations, random_seed=42, verbose=100, allow_writing_files=False, thread_count=-1)
model.fit(Pool(df[~holdout], y[~holdout], cat_features=cats))
p = model.predict_proba(Pool(df[holdout], cat_features=cats))[:, 1]
model.save_model(out)
print(f"holdout rows {int(holdout.sum())}, mean score {p.mean():.4f}")
