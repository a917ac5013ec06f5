"""Speech data: the committed ARCTIC fixtures, user manifests (with bad files), and the synthetic TTS set."""

import hashlib
import json
import math
import warnings

import numpy as np
import pytest
import torch

from unitok.data import speech
from unitok.data.items import SpeechItem

soundfile = pytest.importorskip("soundfile")


def write_wav(path, samples: np.ndarray, sample_rate: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, sample_rate, subtype="PCM_16")
    return path


def tone(seconds=0.5, sample_rate=16000, amplitude=0.3, channels=1):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = amplitude * np.sin(2 * np.pi * 220 * t)
    return np.stack([x, 0.5 * x], axis=1)[:, :channels] if channels > 1 else x


def write_manifest(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- committed fixtures ---------------------------------------------------------------------------------------------


def test_fixtures_load_with_transcripts_and_rates():
    a0007, a0009 = speech.load_speech_fixtures()
    assert (a0007.name, a0007.speaker, a0007.sample_rate, a0007.waveform.shape) == ("arctic_a0007", "awb", 16000,
                                                                                     (64000,))
    assert (a0009.name, a0009.speaker, a0009.sample_rate, a0009.waveform.shape) == ("arctic_a0009", "slt", 16000,
                                                                                     (49520,))
    assert a0007.transcript == "And you always want to see it in the superlative degree."
    assert a0009.transcript == "He turned sharply, and faced Gregson across the table."
    for item in (a0007, a0009):
        assert item.waveform.dtype == torch.float32 and item.waveform.abs().max() <= 1.0
        assert speech.validate_speech(item) is None and -25 < speech.rms_dbfs(item.waveform) < -15
        assert "CMU ARCTIC" in item.source


def test_fixture_files_match_manifest_hashes_and_size_budget():
    rows = [json.loads(line) for line in (speech.FIXTURE_DIR / "manifest.jsonl").read_text().splitlines()]
    for row in rows:
        data = (speech.FIXTURE_DIR / row["audio"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"] and "CMU ARCTIC" in row["licence"]
    assert "Carnegie Mellon University" in (speech.FIXTURE_DIR / "LICENSE-CMU-ARCTIC.txt").read_text()
    assert sum(p.stat().st_size for p in speech.FIXTURE_DIR.iterdir()) < 1_000_000


# --- user manifests, validation and bad files -------------------------------------------------------------------


def test_manifest_relative_paths_stereo_and_own_rate(tmp_path, monkeypatch):
    write_wav(tmp_path / "clips" / "a.wav", tone(), 16000)
    write_wav(tmp_path / "clips" / "b.wav", tone(sample_rate=24000, channels=2), 24000)
    manifest = write_manifest(tmp_path / "set.jsonl", [
        {"audio": "clips/a.wav", "transcript": "first", "speaker": "s1", "sample_rate": 22050},
        {"audio": str(tmp_path / "clips" / "b.wav"), "text": "second", "name": "bee", "sample_rate": 24000},
    ])
    monkeypatch.chdir(tmp_path.parent)  # relative paths resolve against the manifest, not the cwd
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a, b = speech.load_speech_manifest(manifest)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "says 22050 Hz, the file is 16000 Hz" in messages[0] and "2 channels" in messages[1]
    assert (a.name, a.transcript, a.speaker, a.sample_rate, a.waveform.shape) == ("a", "first", "s1", 16000, (8000,))
    assert (b.name, b.transcript, b.sample_rate) == ("bee", "second", 24000)
    expected = soundfile.read(str(tmp_path / "clips" / "b.wav"), dtype="float32")[0].mean(axis=1)
    torch.testing.assert_close(b.waveform, torch.from_numpy(expected))


def test_validate_speech_reasons():
    def item(wav):
        return SpeechItem("x", wav, 16000, "t")

    assert speech.validate_speech(item(torch.zeros(0))) == "empty audio (0 samples)"
    assert "all samples are zero" in speech.validate_speech(item(torch.zeros(1600)))
    assert "-70.0 dBFS" in speech.validate_speech(item(torch.full((1600,), 10 ** (-70 / 20))))
    assert "NaN" in speech.validate_speech(item(torch.tensor([0.1, float("nan")])))
    assert speech.validate_speech(item(torch.full((1600,), 10 ** (-50 / 20)))) is None
    t = torch.arange(16000) / 16000
    assert speech.rms_dbfs(torch.sin(2 * math.pi * 100 * t)) == pytest.approx(-3.01, abs=0.01)


def test_silent_and_empty_audio_are_skipped_with_a_warning(tmp_path):
    write_wav(tmp_path / "ok.wav", tone(), 16000)
    write_wav(tmp_path / "zeros.wav", np.zeros(8000), 16000)
    write_wav(tmp_path / "quiet.wav", tone(amplitude=10 ** (-70 / 20)), 16000)  # RMS -73 dBFS
    write_wav(tmp_path / "empty.wav", np.zeros(0), 16000)
    rows = [{"audio": f"{n}.wav", "transcript": n} for n in ("ok", "zeros", "quiet", "empty")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = speech.load_speech_manifest(write_manifest(tmp_path / "m.jsonl", rows))
    assert [i.name for i in items] == ["ok"]
    messages = " ".join(str(w.message) for w in caught)
    assert "skipping zeros.wav" in messages and "skipping quiet.wav" in messages and "skipping empty.wav" in messages


def test_missing_corrupt_and_malformed_entries_raise_clear_errors(tmp_path):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(FileNotFoundError, match=r"m1.jsonl:1: audio file not found: .*nope.wav"):
        speech.load_speech_manifest(write_manifest(tmp_path / "m1.jsonl", [{"audio": "nope.wav", "transcript": "x"}]))
    with pytest.raises(ValueError, match=r"m2.jsonl:1: cannot read audio file .*corrupt.wav"):
        speech.load_speech_manifest(write_manifest(tmp_path / "m2.jsonl", [{"audio": "corrupt.wav", "transcript": ""}]))
    with pytest.raises(ValueError, match="needs an 'audio' path and a 'transcript'"):
        speech.load_speech_manifest(write_manifest(tmp_path / "m3.jsonl", [{"audio": "corrupt.wav"}]))
    (tmp_path / "m4.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="m4.jsonl:1: not valid JSON"):
        speech.load_speech_manifest(tmp_path / "m4.jsonl")
    with pytest.raises(FileNotFoundError, match="speech manifest not found"):
        speech.load_speech_manifest(tmp_path / "absent.jsonl")


# --- synthetic TTS set -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Three Harvard sentences x both voices (6 clips), seed 0: (folder, sentences, items)."""
    pytest.importorskip("piper")
    pytest.importorskip("hibari")
    folder, sentences = tmp_path_factory.mktemp("tts") / "seed0", speech.HARVARD_SENTENCES[:3]
    return folder, sentences, speech.synthesize_speech_set(folder, sentences, seed=0)


def file_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_synthetic_set_files_transcripts_and_rates(synthetic):
    folder, sentences, items = synthetic
    assert len(speech.HARVARD_SENTENCES) == 20
    assert [i.name for i in items] == ["joe_00", "heart_00", "joe_01", "heart_01", "joe_02", "heart_02"]
    assert [i.transcript for i in items] == [s for s in sentences for _ in range(2)]
    assert [i.sample_rate for i in items] == [22050, 24000] * 3 and [i.speaker for i in items] == ["joe", "heart"] * 3
    assert all(speech.validate_speech(i) is None and 1.0 < i.waveform.numel() / i.sample_rate < 5.0 for i in items)
    assert sorted(file_bytes(folder)) == sorted([f"{i.name}.wav" for i in items] + ["manifest.jsonl"])
    info = soundfile.info(str(folder / "heart_00.wav"))
    assert (info.subtype, info.channels, info.samplerate) == ("PCM_16", 1, 24000)
    with pytest.raises(ValueError, match="unknown voice"):
        speech.synthesize_speech_set(folder.parent / "bad", sentences, voices=("nobody",))


def test_synthetic_set_is_byte_identical_for_a_seed(synthetic):
    folder, sentences, _ = synthetic
    for name, seed in (("again", 0), ("other_seed", 1)):
        speech.synthesize_speech_set(folder.parent / name, sentences, seed=seed)
    first, again, other = (file_bytes(folder.parent / name) for name in ("seed0", "again", "other_seed"))
    assert first == again
    for name in ("joe_00.wav", "heart_00.wav"):  # both voices draw their noise from the seed
        assert first[name] != other[name]


def test_whisper_understands_the_synthetic_set(synthetic):
    pytest.importorskip("faster_whisper")
    pytest.importorskip("jiwer")
    from unitok.evaluation.metrics import speech as sm

    transcriber = sm.Transcriber()
    items = synthetic[2]
    errors = [sm.wer(i.transcript, transcriber(i.waveform, i.sample_rate)) for i in items]
    assert np.mean(errors) < 0.3 and max(errors) <= 0.5, errors
