"""Model signatures with OpenSSF model-signing (key-based, offline): who approved this model.
[runtime side; optional: pip install 'edgemnist[sign]']

`export --sign-key KEY.pem` writes `<model>.sig` beside each model that passed its parity gate (a
Sigstore bundle signed with an elliptic-curve private key, no network); `verify --public-key PUB.pem`
refuses a model whose bytes do not match its signature. Keys are ordinary PEM files:

    openssl ecparam -name prime256v1 -genkey -noout -out key.pem
    openssl ec -in key.pem -pubout -out pub.pem

The weights digest (edgemnist.integrity) catches damage; a signature also catches a deliberate change,
since only the holder of the private key can make one that verifies.
"""

from __future__ import annotations

from pathlib import Path

from edgemnist import ModelError, UserError, atomic, first_line

INSTALL = "model signing needs the [sign] extra: pip install 'edgemnist[sign]'"


def signature_path(model: Path) -> Path:
    return model.with_name(model.name + ".sig")


def _library():
    try:
        import model_signing
    except ImportError:
        raise UserError(INSTALL) from None
    return model_signing


def signer(private_key: Path):
    """A signing configuration for `private_key`; UserError for a missing library or an unusable key
    (called before a long export, so that it fails first)."""
    private_key = Path(private_key)
    if not private_key.is_file():
        raise UserError(f"--sign-key {private_key}: no such file")
    ms = _library()
    try:
        config = ms.signing.Config().use_elliptic_key_signer(private_key=private_key)
    except Exception as e:  # the library reports bad keys with ValueError, TypeError or cryptography's own errors
        raise UserError(f"--sign-key {private_key} is not an unencrypted elliptic-curve private key in PEM ({first_line(e)[:120]})") from None
    return config


def sign(model: Path, config) -> Path:
    """Write `<model>.sig` (atomically) with a `signer` configuration."""
    out = signature_path(Path(model))
    with atomic.atomic_path(out) as tmp:
        config.sign(Path(model), tmp)
    return out


def check(model: Path, public_key: Path, signature: Path | None = None) -> dict:
    """ModelError (exit 2) unless `signature` (default `<model>.sig`) is a valid signature of the
    model's bytes by `public_key`'s private key. Returns what was checked, for reports."""
    model, public_key = Path(model), Path(public_key)
    signature = Path(signature) if signature else signature_path(model)
    for what, path in (("model", model), ("--public-key", public_key), ("signature", signature)):
        if not path.is_file():
            raise ModelError(f"{what} {path}: no such file" + (" (sign at export with --sign-key)" if what == "signature" else ""))
    ms = _library()
    try:
        config = ms.verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    except Exception as e:
        raise UserError(f"--public-key {public_key} is not an elliptic-curve public key in PEM ({first_line(e)[:120]})") from None
    try:
        config.verify(model, signature)
    except Exception as e:  # a mismatch is ValueError; a damaged bundle fails in the parser or the crypto layer
        why = "its bytes differ from what was signed" if "mismatch" in str(e).lower() else first_line(e)[:160]
        raise ModelError(f"{model}: signature {signature} does not verify with {public_key} ({why}): "
                         "do not use this model") from None
    return {"verified": True, "signature": str(signature), "public_key": str(public_key)}
