"""Attribute measures on token sequences, and attribute vectors from latent codes."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.cli.attributes import (
    ATTRIBUTES,
    AttributeVectors,
    measure,
    measure_batch,
    quartile_difference,
)
from pipelines.representation import melody_tokens_from_notes, notesequence_to_tokens


def melody(notes: list[tuple[int, int, int]], num_steps: int = 32) -> np.ndarray:
    """Melody tokens from (pitch, start, end) steps, through the representation's encoder."""
    pitch, start, end = (np.array(column) for column in zip(*notes, strict=True))
    return melody_tokens_from_notes(start, end, pitch, num_steps)


def test_quarter_notes_on_the_beat():
    # C D E F G A B C on every quarter note: diatonic, unsyncopated, steps of 1-2 semitones.
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    values = measure(melody([(p, 4 * i, 4 * i + 4) for i, p in enumerate(pitches)]))
    assert values["note_density"] == pytest.approx(8 / 32)
    assert values["average_interval"] == pytest.approx(np.mean(np.abs(np.diff(pitches))))
    assert values["syncopation_16th"] == 0.0
    assert values["syncopation_8th"] == 0.0
    assert values["c_diatonic"] == 1.0


def test_offbeat_onsets_are_syncopated():
    # Onsets on steps 1, 2, 5, 6: two on odd 16ths, two on the "and" of a beat.
    notes = [(60, 1, 2), (61, 2, 4), (60, 5, 6), (61, 6, 8)]
    values = measure(melody(notes, num_steps=16))
    assert values["syncopation_16th"] == pytest.approx(0.5)
    assert values["syncopation_8th"] == pytest.approx(0.5)
    assert values["c_diatonic"] == pytest.approx(0.5)  # C# is not in C major
    assert values["average_interval"] == pytest.approx(1.0)


def test_held_notes_and_rests_are_not_onsets():
    held = melody([(60, 0, 16)], num_steps=16)
    assert measure(held)["note_density"] == pytest.approx(1 / 16)
    assert np.isnan(measure(held)["average_interval"])  # one note: no interval
    silence = np.zeros(16, dtype=np.int64)
    values = measure(silence)
    assert values["note_density"] == 0.0
    assert all(np.isnan(values[name]) for name in ATTRIBUTES if name != "note_density")


def test_drums_measure_rhythm_only():
    tokens = np.zeros(16, dtype=np.int64)
    tokens[[0, 3, 8]] = [1, 6, 2]  # kick; snare + hat on an odd 16th; snare
    values = measure(tokens, "drums")
    assert values["note_density"] == pytest.approx(3 / 16)
    assert values["syncopation_16th"] == pytest.approx(1 / 3)
    assert np.isnan(values["average_interval"]) and np.isnan(values["c_diatonic"])


def test_trio_is_measured_on_its_melody():
    from fixtures_data import bass_notes, drum_notes, make_sequence, melody_notes

    sequence = make_sequence(
        [
            (0, False, melody_notes(2, 4, seed=1)),
            (33, False, bass_notes(2)),
            (0, True, drum_notes(2)),
        ]
    )
    tracks = notesequence_to_tokens(sequence, "trio", num_steps=32)
    batch = np.stack([tracks["melody"], tracks["bass"], tracks["drums"]], axis=1)[None]
    row = measure_batch(batch, "trio")[0]
    expected = measure(tracks["melody"])
    np.testing.assert_allclose(row, [expected[name] for name in ATTRIBUTES])


def test_quartile_difference_points_along_the_attribute():
    rng = np.random.default_rng(0)
    values = rng.random((400, 2))
    values[::7, 1] = np.nan  # undefined for some sequences: left out of that attribute
    noise = rng.normal(size=(400, 6)) * 0.1
    latents = noise.copy()
    latents[:, 0] += values[:, 0]  # attribute 0 lives on dimension 0
    latents[:, 3] -= np.nan_to_num(values[:, 1])  # attribute 1 on minus dimension 3
    vectors, low, high, sizes = quartile_difference(latents, values)
    assert np.argmax(np.abs(vectors[0])) == 0 and vectors[0, 0] > 0.5
    assert np.argmax(np.abs(vectors[1])) == 3 and vectors[1, 3] < -0.5
    assert sizes[0] == 100 and sizes[1] == (400 - len(values[::7])) // 4
    assert np.all(low < high)


def test_attribute_vectors_round_trip(tmp_path):
    vectors = AttributeVectors(
        names=list(ATTRIBUTES),
        vectors=np.arange(10.0).reshape(5, 2),
        low_threshold=np.zeros(5),
        high_threshold=np.ones(5),
        quartile_size=np.full(5, 3),
        metadata={"model_sha256": "abc", "split": "train"},
    )
    loaded = AttributeVectors.load(vectors.save(tmp_path / "v.npz"))
    assert loaded.names == list(ATTRIBUTES) and loaded.metadata == vectors.metadata
    np.testing.assert_array_equal(loaded.vector("average_interval"), [2.0, 3.0])
    with pytest.raises(KeyError, match="available"):
        loaded.vector("loudness")


def test_a_drum_model_gets_only_the_rhythm_vectors():
    import torch

    from evaluation.cli.attributes import attribute_effects, compute_attribute_vectors
    from training.configs import get_config
    from training.model import MusicVAE

    cfg = get_config("cat-drums_2bar_tiny")
    torch.manual_seed(0)
    model = MusicVAE(cfg).eval()
    rng = np.random.default_rng(0)
    hits = rng.random((16, cfg.max_seq_len, 1)) < rng.uniform(0.1, 0.6, (16, 1, 1))
    tokens = np.where(hits, rng.integers(1, 512, hits.shape), 0)
    vectors = compute_attribute_vectors(model, tokens, cfg.kind)
    rhythm = ["note_density", "syncopation_16th", "syncopation_8th"]
    assert vectors.defined_names == rhythm
    effects = attribute_effects(model, tokens[:4], cfg.kind, vectors)
    assert effects.vector_names == rhythm and effects.percent_change.shape == (3, len(ATTRIBUTES))


@pytest.mark.slow
def test_attribute_vectors_move_their_attribute(tmp_path_factory):
    """On a model trained enough (~1 CPU-minute), each vector pushes its own attribute: decoding
    z + v gives more of it than decoding z - v, on average over held-out inputs."""
    from fixtures_models import TRAINED, dataset_dir, train_model

    from evaluation.cli.attributes import attribute_effects, compute_attribute_vectors
    from training.checkpoint import load_model
    from training.data import load_split

    model, cfg = load_model(train_model(tmp_path_factory, "trained", TRAINED))
    data = str(dataset_dir(tmp_path_factory))
    train = load_split(data, "train", cfg.tracks, cfg.num_bars)
    test = load_split(data, "test", cfg.tracks, cfg.num_bars)
    vectors = compute_attribute_vectors(model, train, cfg.kind)
    added = attribute_effects(model, test, cfg.kind, vectors, strength=1.0)
    subtracted = attribute_effects(model, test, cfg.kind, vectors, strength=-1.0)
    for i, name in enumerate(ATTRIBUTES):
        assert added.mean_change[i, i] > subtracted.mean_change[i, i], name
    # The factor the data vary most simply moves both ways from the unedited decoding.
    density = ATTRIBUTES.index("note_density")
    assert added.mean_change[density, density] > 0 > subtracted.mean_change[density, density]
