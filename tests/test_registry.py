from pathlib import Path

import yaml


def test_every_model_is_a_registered_artifact_at_its_training_output():
    dvc = yaml.safe_load(Path("dvc.yaml").read_text())
    models = list(yaml.safe_load(Path("params.yaml").read_text())["models"])
    artifacts = dvc["artifacts"]
    assert list(artifacts) == models
    train_outs = dvc["stages"]["train"]["do"]["outs"]
    for name, artifact in artifacts.items():
        assert artifact["type"] == "model" and artifact["desc"] and artifact["labels"]
        assert artifact["path"] == f"models/{name}.keras"
        assert "models/${key}.keras" in train_outs  # what `dvc artifacts get` downloads is what train writes
