"""Tables from the sweep's jsonl: python benchmarks/fidelity_research/summarize.py gcn.jsonl fmnist.jsonl"""
import collections, json, sys
import numpy as np
for path in sys.argv[1:]:
    recs = [json.loads(l) for l in open(path)]
    by = collections.OrderedDict()
    for r in recs:
        by.setdefault(r["name"], []).append(r)
    print(f"== {path}")
    for name, rs in by.items():
        if rs[0]["task"] == "cora":
            bv = np.array([r["bestval_test"] for r in rs]) * 100
            kp = np.array([r["kipf_test"] for r in rs]) * 100
            va = np.array([r["bestval_val"] for r in rs]) * 100
            print(f"{name:28s} n={len(rs)} val {va.mean():5.1f} test@bestval {bv.mean():5.1f}±{bv.std():.1f}  "
                  f"kipf {kp.mean():5.1f}  trainloss min {np.mean([r['min_train_loss'] for r in rs]):.3f} "
                  f"gain {np.round(rs[0]['gains'],2).tolist()} orth {max(rs[0]['orth']):.1e} {rs[0]['secs']}s")
        else:
            va = np.array([r["val"][-1] for r in rs]) * 100
            te = np.array([r["test"][-1] for r in rs]) * 100
            v1 = np.array([r["val"][0] for r in rs]) * 100
            print(f"{name:22s} n={len(rs)} val(ep1) {v1.mean():5.2f} val {va.mean():5.2f}±{va.std():.2f} "
                  f"test {te.mean():5.2f}±{te.std():.2f} trainloss {np.mean([r['train_loss'][-1] for r in rs]):.3f} "
                  f"orth {max(rs[0]['orth']):.1e}")
