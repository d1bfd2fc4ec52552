"""scikit-learn anchors for the Brown text benchmark (bench/text.ts runs this when python3-sklearn is installed).

Reads JSON {texts, labels, groups} on stdin (the exact chunks latentdex uses) and prints one JSON object of
P@10 figures: every chunk a query against all others, neighbours from its own source text skipped.
"""
import json
import sys

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize


def p_at_k(x, labels, groups, k=10):
    x = normalize(x)
    s = x @ x.T
    s = np.asarray(s.todense() if hasattr(s, 'todense') else s, dtype=np.float64)
    s[groups[:, None] == groups[None, :]] = -np.inf
    idx = np.argpartition(-s, k, axis=1)[:, :k]
    return float((labels[idx] == labels[:, None]).mean())


def main():
    d = json.load(sys.stdin)
    texts, labels, groups = d['texts'], np.array(d['labels']), np.array(d['groups'])
    out = {}
    for name, kw in [('2000', {'max_features': 2000}), ('full', {})]:
        vec = TfidfVectorizer(stop_words='english', **kw)
        x = vec.fit_transform(texts)
        out[f'tfidf_{name}'] = p_at_k(x, labels, groups)
        out[f'lsa32_{name}'] = p_at_k(TruncatedSVD(32, random_state=0).fit_transform(x), labels, groups)
        out[f'vocab_{name}'] = x.shape[1]
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
