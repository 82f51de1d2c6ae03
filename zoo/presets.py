"""Pretrained zoo checkpoints ("presets"): the registry, as plain data, and the loader.

    import zoo
    zoo.list_pretrained()                       # ['convmixer_32_2_k5_p2.chans_textures', ...]
    model = zoo.pretrained("convmixer_32_2_k5_p2.chans_textures")

Names follow timm's `arch.tag`: the architecture with its size (`convmixer_32_2_k5_p2` is a
ConvMixer of width 32, depth 2, kernel 5, patch 2), then the mixing mode and the data set
it was trained on (`chans_textures`).

The records live in `zoo/checkpoints/presets.json` (JSON, no Keras import), next to the
files they describe, as Keras applications keep a weight file's hash next to its builder.
Each record holds: `model` and `config` (what `zoo.create_model` builds), `mode`,
`filters`, `dataset`, `task`, the test `metric` and its `value` measured when the file was
made, `params` (Keras `count_params`) and `params_trainable`, `sha256`, `bytes`, and where
the file lives: `file` (shipped in this package, relative to `zoo/checkpoints/`) or `url`
(downloaded once through `keras.utils.get_file(..., file_hash=sha256)` into the Keras
cache). How it was made (`made_by`, `backend`, `run`, `cell`, `budget`) comes along.

`spatialmix zoo build` remakes the shipped files and rewrites the records;
`spatialmix zoo verify` checks every file against its record;
`spatialmix zoo export RUN_DIR --cell ID` turns any trained cell of a run into a record.

A file is never loaded unless its sha256 matches the record: a wrong hash, a missing or a
truncated file is a one-line `SpatialmixError` that names the preset.
"""

import hashlib
import json
import os

from zoo.errors import SpatialmixError, check

CHECKPOINTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints")
REGISTRY_FILE = os.path.join(CHECKPOINTS_DIR, "presets.json")
CACHE_SUBDIR = "spatialmix_presets"  # under the Keras cache ($KERAS_HOME or ~/.keras)

REQUIRED = ("model", "config", "mode", "filters", "dataset", "task", "metric", "value", "params",
            "sha256", "bytes")


def records(path=None):
    """{name: record} of every preset (read from the registry file each call)."""
    path = path or REGISTRY_FILE
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        found = json.load(f)
    return found.get("presets", found)


def list_pretrained():
    """Names of the registered presets, sorted."""
    return sorted(records())


def preset_record(name):
    """The record of preset `name` (a copy)."""
    found = records()
    if name not in found:
        names = ", ".join(sorted(found)) or "none registered"
        raise SpatialmixError(f"unknown preset {name!r}; choose one of: {names} (see `spatialmix zoo list`)")
    return dict(found[name])


def validate_record(name, record):
    """Raise SpatialmixError unless `record` has every field and exactly one location."""
    missing = [k for k in REQUIRED if k not in record]
    check(not missing, f"preset {name!r}: record lacks {', '.join(missing)}")
    check(("file" in record) != ("url" in record), f"preset {name!r}: record needs exactly one of 'file' or 'url'")


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(name, record, path):
    """Raise a one-line SpatialmixError unless `path` is the file `record` describes
    (exists, has the recorded size, has the recorded sha256). Returns `path`."""
    if not os.path.isfile(path):
        raise SpatialmixError(f"preset {name!r}: file {path} is missing; reinstall spatialmix or run "
                              "`spatialmix zoo build`")
    size = os.path.getsize(path)
    if size != record["bytes"]:
        raise SpatialmixError(f"preset {name!r}: file {path} has {size} bytes, the registry says "
                              f"{record['bytes']} (truncated or replaced); not loading it")
    digest = sha256_of(path)
    if digest != record["sha256"]:
        raise SpatialmixError(f"preset {name!r}: sha256 of {path} is {digest[:16]}…, the registry says "
                              f"{record['sha256'][:16]}… (tampered or stale); not loading it")
    return path


def shipped_path(record):
    return os.path.join(CHECKPOINTS_DIR, record["file"])


def preset_path(name, record=None, cache_dir=None):
    """Local path of preset `name`, checked against its record. A URL preset is downloaded
    once into the Keras cache (`cache_dir`, default $KERAS_HOME or ~/.keras)."""
    record = dict(record) if record is not None else preset_record(name)
    validate_record(name, record)
    if "file" in record:
        return check_file(name, record, shipped_path(record))
    import keras  # only a URL preset needs Keras before loading

    cache_dir = _cache_dir(cache_dir)
    try:
        path = keras.utils.get_file(fname=f"{name}.keras", origin=record["url"], file_hash=record["sha256"],
                                    hash_algorithm="sha256", cache_dir=cache_dir, cache_subdir=CACHE_SUBDIR)
    except ValueError as e:  # get_file: hash mismatch after download (it leaves the file behind)
        _remove_cached(name, cache_dir)
        raise SpatialmixError(f"preset {name!r}: the file downloaded from {record['url']} does not match "
                              f"the registry's sha256 ({e.__class__.__name__}); not loading it") from None
    except Exception as e:  # noqa: BLE001 - get_file raises a bare Exception on URL errors
        raise SpatialmixError(f"preset {name!r}: could not download {record['url']}: {_one_line(e)}") from None
    try:
        return check_file(name, record, path)
    except SpatialmixError:
        _remove_cached(name, cache_dir)
        raise


def pretrained(name, record=None, cache_dir=None, compile=False):
    """Load preset `name` as a plain `keras.Model`, after checking its sha256.

    The file is opened with `safe_mode=True`; the returned model's `count_params()` is the
    record's `params`. `record` overrides the registry (e.g. a preset of your own);
    `cache_dir` is where URL presets are downloaded (default: the Keras cache).
    """
    record = dict(record) if record is not None else preset_record(name)
    path = preset_path(name, record, cache_dir)
    import keras

    try:
        model = keras.models.load_model(path, safe_mode=True, compile=compile)
    except Exception as e:  # noqa: BLE001
        raise SpatialmixError(f"preset {name!r}: {path} does not load: {_one_line(e)}") from None
    check(model.count_params() == record["params"],
          f"preset {name!r}: the loaded model has {model.count_params()} parameters, the registry says "
          f"{record['params']}")
    return model


def verify(cache_dir=None):
    """Check every registered preset's file: [(name, ok, message)]. A URL preset is checked
    in the cache if it has been downloaded, else reported as not downloaded (ok)."""
    out = []
    for name, record in sorted(records().items()):
        try:
            validate_record(name, record)
            if "file" in record:
                check_file(name, record, shipped_path(record))
                out.append((name, True, f"ok  {record['bytes']} bytes  sha256 {record['sha256'][:12]}"))
            else:
                cached = _cached_path(name, cache_dir)
                if os.path.exists(cached):
                    check_file(name, record, cached)
                    out.append((name, True, f"ok  (cached download) sha256 {record['sha256'][:12]}"))
                else:
                    out.append((name, True, f"not downloaded ({record['url']})"))
        except SpatialmixError as e:
            out.append((name, False, str(e)))
    return out


def write_records(found, path=None):
    """Write {name: record} to the registry file atomically (used by `spatialmix zoo build`)."""
    path = path or REGISTRY_FILE
    for name, record in found.items():
        validate_record(name, record)
    text = json.dumps({"presets": {k: found[k] for k in sorted(found)}}, indent=2, sort_keys=False) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _cache_dir(cache_dir):
    """The Keras cache (`cache_dir`, else $KERAS_HOME, else ~/.keras), created if needed;
    /tmp/.keras if it cannot be written (as keras.utils.get_file does)."""
    cache_dir = os.path.expanduser(cache_dir or os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError:
        pass
    return cache_dir if os.access(cache_dir, os.W_OK) else "/tmp/.keras"


def _cached_path(name, cache_dir):
    return os.path.join(_cache_dir(cache_dir), CACHE_SUBDIR, f"{name}.keras")


def _remove_cached(name, cache_dir):
    path = _cached_path(name, cache_dir)
    if os.path.exists(path):
        os.unlink(path)


def _one_line(error):
    text = " ".join(str(error).split())
    return text[:300] + ("…" if len(text) > 300 else "")
