"""The stages' parameters: one typed source of defaults per section, params.yaml held to it."""

from pathlib import Path

import pytest
import yaml

from evaluation.params import CompareParams, EvaluateParams, LMParams, RegisterParams
from pipelines import examples, notesequences
from pipelines.multitrack.build import MultitrackParams
from pipelines.params import from_mapping, read_params
from training.configs import get_config, params_overrides

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
SECTIONS = {
    "notesequences": notesequences.Limits,
    "examples": examples.ExamplesParams,
    "multitrack": MultitrackParams,
    "lm": LMParams,
    "evaluate": EvaluateParams,
    "compare": CompareParams,
    "register": RegisterParams,
}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_params_yaml_default_profile_is_the_dataclass_defaults(section):
    cls = SECTIONS[section]
    assert read_params(PARAMS, section, cls) == cls()
    # Every knob is in params.yaml, where DVC sees it change.
    assert set(yaml.safe_load(PARAMS.read_text())[section]) == set(cls.__dataclass_fields__)


def test_every_profile_overrides_only_known_parameters_with_the_right_types():
    params = yaml.safe_load(PARAMS.read_text())
    for name, profile in params["profiles"].items():
        for section, cls in SECTIONS.items():
            merged = {**params[section], **(profile.get(section) or {})}
            assert isinstance(from_mapping(cls, section, merged), cls), name


def test_a_stage_reads_its_section_only_and_rejects_unknown_or_mistyped_values(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"lm": {"train_steps": 5, "max_minutes": 1}, "evaluate": {}}))
    assert read_params(path, "lm", LMParams) == LMParams(train_steps=5, max_minutes=1)
    assert read_params(path, "evaluate", EvaluateParams) == EvaluateParams()
    assert read_params(tmp_path / "absent.yaml", "register", RegisterParams) == RegisterParams()
    assert from_mapping(EvaluateParams, "evaluate", {"max_examples": None}).max_examples is None
    # YAML's 10 for a float field arrives as 10.0, as the flag would give it.
    limits = from_mapping(notesequences.Limits, "notesequences", {"min_qpm": 10})
    assert type(limits.min_qpm) is float and type(limits.max_notes) is int
    with pytest.raises(ValueError, match=r"unknown lm parameters \['hiden_size'\]"):
        from_mapping(LMParams, "lm", {"hiden_size": 3})
    with pytest.raises(ValueError, match="lm.train_steps = '5': expected int"):
        from_mapping(LMParams, "lm", {"train_steps": "5"})
    with pytest.raises(ValueError, match="evaluate.seed = True: expected int"):
        from_mapping(EvaluateParams, "evaluate", {"seed": True})
    with pytest.raises(ValueError, match="register.metric = None"):
        from_mapping(RegisterParams, "register", {"metric": None})


def test_beam_stages_take_their_section_from_params_yaml_and_flags_over_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        yaml.safe_dump({"notesequences": {"max_notes": 50}, "examples": {"test_fraction": 0.1}})
    )
    args, beam_args = notesequences.parse_args(["--params", str(path), "--runner", "DirectRunner"])
    assert (args.max_notes, args.max_qpm) == (50, notesequences.Limits().max_qpm)
    assert beam_args == ["--runner", "DirectRunner"]  # the rest stays Beam's
    args, _ = notesequences.parse_args(["--params", str(path), "--max_notes", "7"])
    assert args.max_notes == 7
    args, _ = examples.parse_args(["--params", str(path)])
    assert (args.test_fraction, args.eval_fraction) == (0.1, 0.05)
    assert examples.parse_args([])[0].datasets == "mel_2bar,mel_16bar,drums_2bar,trio_16bar"
    path.write_text(yaml.safe_dump({"examples": {"eval_fraction": "a lot"}}))
    with pytest.raises(ValueError, match="examples.eval_fraction"):
        examples.parse_args(["--params", str(path)])


def test_training_reads_train_defaults_then_its_model_through_read_section(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "train": {
                    "defaults": {"seed": 3, "max_steps": 10},
                    "cat-mel_2bar_cpu": {"max_steps": 20},
                },
                "lm": {"seed": 9},
            }
        )
    )
    assert params_overrides(str(path), "cat-mel_2bar_cpu") == {"seed": 3, "max_steps": 20}
    assert params_overrides(str(path), "flat-mel_16bar_cpu") == {"seed": 3, "max_steps": 10}
    assert get_config("flat-mel_16bar_cpu", params_overrides(str(path), "x")).max_steps == 10
    assert params_overrides(str(tmp_path / "absent.yaml"), "cat-mel_2bar_cpu") == {}
    assert params_overrides(None, "cat-mel_2bar_cpu") == {}
    path.write_text(yaml.safe_dump({"train": {"cat-mel_2bar_cpu": [1, 2]}}))
    with pytest.raises(ValueError, match="train.cat-mel_2bar_cpu must be a mapping"):
        params_overrides(str(path), "cat-mel_2bar_cpu")
    path.write_text(yaml.safe_dump({"train": [1]}))
    with pytest.raises(ValueError, match="section 'train' must be a mapping"):
        params_overrides(str(path), "cat-mel_2bar_cpu")
