import csv
import json

from imagenet_trainer.cli import main
from imagenet_trainer.tools.report import confusion_matrix, write_report


def test_confusion_and_per_class(tmp_path):
    classes = ["a", "b", "c"]
    labels = [0, 0, 1, 1, 2, 2]
    preds = [0, 1, 1, 1, 2, 0]
    p_true = [0.9, 0.2, 0.8, 0.7, 0.6, 0.1]
    paths = [f"img{i}.jpg" for i in range(6)]
    assert confusion_matrix(__import__("numpy").array(labels), __import__("numpy").array(preds), 3).tolist() == \
        [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    rep = write_report(tmp_path, classes, labels, preds, p_true, paths, worst=2)
    rows = list(csv.DictReader(open(tmp_path / "per_class.csv")))
    assert [(r["class"], float(r["top1_accuracy"]), r["most_confused_with"]) for r in rows] == \
        [("a", 50.0, "b"), ("b", 100.0, ""), ("c", 50.0, "a")]
    assert [w["path"] for w in rep["worst"]] == ["img5.jpg", "img1.jpg"]
    assert (tmp_path / "confusion.png").stat().st_size > 1000
    assert open(tmp_path / "confusion.csv").read().splitlines()[1] == "a,1,1,0"


def test_evaluate_writes_the_report(tiny_tree, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_tree), "--output", str(tmp_path / "run"), "--arch", "smallcnn",
                 "--epochs", "1", "--batch-size", "6", "--image-size", "36", "--crop-size", "32", "--workers", "0",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "run" / "model_01.pt"), "--data", str(tiny_tree),
                 "--report", str(tmp_path / "rep"), "--json", "--workers", "0"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert sum(r["images"] for r in res["per_class"]) == 6 and len(res["worst"]) == 6
    assert all(str(tiny_tree) in w["path"] for w in res["worst"])
    for name in ("per_class.csv", "confusion.csv", "confusion.png", "worst.csv"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
