"""An intact model: the weights digest `export` records (edgemnist.graph_sha256) refuses damaged
weights in everything that opens a model, and a signature (`export --sign-key`, `verify --public-key`)
refuses any change at all."""

from __future__ import annotations

import shutil

import onnx
import pytest

from edgemnist import ModelError, integrity, runtime
from edgemnist import verify as vf

import tamper
from conftest import ROOT, cli

INT8 = ROOT / "exported/mlp.int8.onnx"
FLIPS = 200  # seeded bit flips in the weights (every one refused)


def test_export_records_the_digest_of_the_graph_it_wrote(exported):
    for precision in ("fp32", "int8"):
        blob = open(exported[precision]["path"], "rb").read()
        meta = {p.key: p.value for p in onnx.load_from_string(blob).metadata_props}
        assert meta[integrity.KEY] == integrity.graph_sha256(blob), precision
    for path in (INT8, ROOT / "exported/mlp.onnx", ROOT / "edgemnist/pretrained/mlp.int8.onnx"):  # the committed ones too
        blob = path.read_bytes()
        assert runtime.open_model(path, "cpu", quiet=True).metadata[integrity.KEY] == integrity.graph_sha256(blob), path


def test_every_seeded_bit_flip_in_the_weights_is_refused(tmp_path):
    """What `infer`, `eval`, `bench`, `web build` and the API open (runtime.open_model) and `verify`."""
    blob = INT8.read_bytes()
    flips = tamper.weight_bit_flips(blob, FLIPS, seed=17)
    assert len({o for o, _ in flips}) == FLIPS
    refused = {"open_model": 0, "verify": 0}
    bad = tmp_path / "bad.onnx"
    for offset, bit in flips:
        bad.write_bytes(tamper.flipped(blob, offset, bit))
        for where, call in (("open_model", lambda: runtime.open_model(bad, "cpu", quiet=True)),
                            ("verify", lambda: vf.verify(bad, provider="cpu", quiet=True))):
            with pytest.raises(ModelError, match="its weights are not those recorded at export"):
                call()
            refused[where] += 1
    assert refused == {"open_model": FLIPS, "verify": FLIPS}


def test_the_commands_refuse_a_damaged_model_in_one_line(tmp_path):
    blob = INT8.read_bytes()
    offset, bit = tamper.weight_bit_flips(blob, 1, seed=3)[0]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(tamper.flipped(blob, offset, bit))
    digit = ROOT / "README.md"  # never read: the model is refused first
    for args in (["infer", str(digit), "--model", str(bad)], ["verify", str(bad)], ["eval", str(bad)],
                 ["web", "build", str(tmp_path / "site"), "--model", str(bad)]):
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("error:") and "its weights are not those recorded at export" in last, (args, last)
    assert not (tmp_path / "site").exists()


def test_metadata_edits_leave_the_digest_valid_and_a_model_without_one_still_runs(tmp_path):
    """The digest covers the graph (weights and nodes), not the metadata: adding a key is not damage.
    Models from other tools or older exports carry no digest and run as before."""
    proto = onnx.load(INT8)
    proto.metadata_props.add(key="mine.note", value="added after export")
    edited = tmp_path / "edited.onnx"
    onnx.save(proto, edited)
    assert runtime.open_model(edited, "cpu", quiet=True).metadata["mine.note"] == "added after export"
    kept = [p for p in proto.metadata_props if p.key != integrity.KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, edited)
    assert integrity.KEY not in runtime.open_model(edited, "cpu", quiet=True).metadata


def test_the_walker_refuses_what_is_not_one_model():
    blob = INT8.read_bytes()
    for broken in (blob[:-3], blob + b"\x3a\x05ab", b"\x0f", b""):
        with pytest.raises(ValueError):
            integrity.graph_bytes(broken)


# ---------------------------------------------------------------- signatures (model-signing)

@pytest.fixture(scope="module")
def signed(tmp_path_factory, keys):
    pytest.importorskip("model_signing", reason="pip install -e '.[sign]'")
    from edgemnist import signing

    model = tmp_path_factory.mktemp("signed") / "mlp.int8.onnx"
    shutil.copyfile(INT8, model)
    signing.sign(model, signing.signer(keys["private"]))
    return model


def test_a_signed_model_verifies_and_one_changed_byte_anywhere_fails(signed, keys, tmp_path):
    from edgemnist import signing

    assert signing.check(signed, keys["public"])["verified"] is True
    blob = signed.read_bytes()
    meta_key = blob.rindex(b"edgemnist.version")  # outside the graph: the digest cannot see it, the signature can
    for offset in (meta_key, tamper.weight_bit_flips(blob, 1, seed=5)[0][0], len(blob) - 1):
        changed = tmp_path / "mlp.int8.onnx"
        changed.write_bytes(blob[:offset] + bytes([blob[offset] ^ 1]) + blob[offset + 1 :])
        proc = cli("verify", str(changed), "--public-key", str(keys["public"]), "--signature", str(signing.signature_path(signed)))
        assert proc.returncode == 2 and "does not verify" in proc.stderr.strip().splitlines()[-1], (offset, proc.stderr)
    other = cli("verify", str(signed), "--public-key", str(keys["other_public"]))
    assert other.returncode == 2 and "does not verify" in other.stderr, other.stderr


def test_signature_problems_are_one_line_errors(signed, keys, tmp_path):
    lonely = tmp_path / "unsigned.onnx"
    shutil.copyfile(INT8, lonely)
    garbage = tmp_path / "garbage.sig"
    garbage.write_text("{not json")
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    for args, message in ((["verify", str(lonely), "--public-key", str(keys["public"])], "no such file (sign at export"),
                          (["verify", str(signed), "--public-key", str(keys["public"]), "--signature", str(garbage)], "does not verify"),
                          (["verify", str(signed), "--public-key", str(not_a_key)], "not an elliptic-curve public key"),
                          (["verify", str(signed), "--public-key", str(tmp_path / "nope.pem")], "no such file")):
        proc = cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert message in proc.stderr.strip().splitlines()[-1], (args, proc.stderr)


def test_sign_key_that_is_not_a_key_fails_before_any_work(tmp_path, trained):
    """One line and exit 2 before any export: the key is refused, or (without the [sign] extra) the
    extra is named."""
    import importlib.util

    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    proc = cli("export", str(trained[0]), "--out", str(tmp_path / "m.onnx"), "--sign-key", str(bad))
    if importlib.util.find_spec("model_signing") is not None:
        expected = "not an unencrypted elliptic-curve private key"
    else:
        expected = "error: model signing needs the [sign] extra: pip install 'edgemnist[sign]'"
    assert proc.returncode == 2 and expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not list(tmp_path.glob("*.onnx"))


def test_a_quantized_copy_of_a_model_with_a_digest_carries_its_own(tmp_path):
    """onnxruntime's quantizer copies the fp32 model's metadata, its graph digest included: the int8
    model `quantize` returns (benchmarks quantize exported/mlp.onnx) must record its own graph, or
    every tool refuses it as altered."""
    from edgemnist.settings import QuantSettings
    from edgemnist.training import quantize as q

    fp32 = onnx.load(ROOT / "exported/mlp.onnx")
    assert integrity.KEY in {p.key for p in fp32.metadata_props}
    int8 = q.quantize(fp32, QuantSettings(method="dynamic"), None)
    path = tmp_path / "int8.onnx"
    onnx.save(int8, path)
    recorded = {p.key: p.value for p in int8.metadata_props}[integrity.KEY]
    assert recorded == integrity.graph_sha256(path.read_bytes()) != {p.key: p.value for p in fp32.metadata_props}[integrity.KEY]
    assert runtime.open_model(path, "cpu", quiet=True).takes_uint8 is False  # opened: the digest checked
