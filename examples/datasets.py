"""Fashion-MNIST through TensorFlow Datasets, with an offline path.

`load_fashion_mnist()` returns the TFDS `fashion_mnist` train and test splits
as `(image, label)` pairs. It picks the first source that works, in order:

1. a dataset already prepared in `data_dir`;
2. the Debian package `dataset-fashion-mnist`
   (`/usr/share/datasets/fashion-mnist`): its four `.gz` files are the upstream
   data with a shorter gzip header, so their SHA-256 does not match the
   checksums registered in TFDS. `rebuild_upstream_gzip()` rewrites the
   10-byte header into the upstream one (FNAME flag, upstream mtime and file
   name), which makes the files byte-identical to upstream; the checksums are
   verified and the files are handed to TFDS as its `manual_dir`. Nothing is
   monkeypatched and no network is used;
3. the network, through the usual TFDS download, after a short probe;
4. otherwise `DataUnavailableError`, within seconds, naming both ways to get
   the data. TFDS's own download would retry for about 200 s first.
"""

import hashlib
import os
import tempfile
import threading
import urllib.request

import tensorflow_datasets as tfds

DATASET_NAME = "fashion_mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DOWNLOAD_HOST = "fashion-mnist.s3-website.eu-central-1.amazonaws.com"
PROBE_URL = f"http://{DOWNLOAD_HOST}/t10k-labels-idx1-ubyte.gz"

# File name -> (gzip mtime of the upstream file, upstream SHA-256). The SHA-256
# values are the ones registered in TFDS for `fashion_mnist`.
UPSTREAM_FILES = {
    "train-images-idx3-ubyte.gz": (
        1504176606,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    ),
    "train-labels-idx1-ubyte.gz": (
        1504176606,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    ),
    "t10k-images-idx3-ubyte.gz": (
        1504176627,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        1504176627,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    ),
}

_GZIP_PLAIN_HEADER = b"\x1f\x8b\x08\x00"


class DataUnavailableError(RuntimeError):
    """Raised when no source of Fashion-MNIST is available."""


def default_data_dir():
    """Returns `$TFDS_DATA_DIR`, or TFDS's default `~/tensorflow_datasets`."""
    return os.environ.get(
        "TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets")
    )


def rebuild_upstream_gzip(source, target, mtime, expected_sha256=None):
    """Rewrites a gzip file without FNAME into the upstream form.

    The new header is `1f 8b 08 08`, the little-endian `mtime`, `00` (XFL),
    `03` (OS = Unix), then the file name without `.gz` and a NUL byte. The
    deflate stream and trailer are copied unchanged from byte 10 on.

    Args:
        source: path of a gzip file whose flags byte is 0 (no FNAME).
        target: path to write; its basename without `.gz` goes in the header.
        mtime: int, the modification time to store in the header.
        expected_sha256: optional hex digest the result must have.

    Returns:
        The hex SHA-256 of the file written.

    Raises:
        ValueError: if `source` is not a flag-free gzip file, or the result
            does not have `expected_sha256` (then nothing is left at
            `target`).
    """
    with open(source, "rb") as f:
        data = f.read()
    if data[:4] != _GZIP_PLAIN_HEADER:
        raise ValueError(
            "Invalid gzip file. Expected a file starting with bytes "
            f"{_GZIP_PLAIN_HEADER.hex(' ')} (gzip, deflate, no flags). "
            f"Received: {source} starting with {data[:4].hex(' ')}"
        )
    name = os.path.basename(target)
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    header = (
        b"\x1f\x8b\x08\x08"
        + int(mtime).to_bytes(4, "little")
        + b"\x00\x03"
        + name.encode("latin-1")
        + b"\x00"
    )
    rebuilt = header + data[10:]
    digest = hashlib.sha256(rebuilt).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise ValueError(
            f"Checksum mismatch after rebuilding {source}. Expected: "
            f"sha256={expected_sha256}. Received: sha256={digest}"
        )
    with open(target, "wb") as f:
        f.write(rebuilt)
    return digest


def has_debian_files(debian_dir=DEBIAN_DIR):
    """Whether `debian_dir` holds the four Fashion-MNIST `.gz` files."""
    return all(
        os.path.isfile(os.path.join(debian_dir, name))
        for name in UPSTREAM_FILES
    )


def prepare_manual_dir(debian_dir, manual_dir):
    """Writes the four upstream `.gz` files into `manual_dir`, verified.

    Returns:
        `manual_dir`.
    """
    os.makedirs(manual_dir, exist_ok=True)
    for name, (mtime, sha256) in UPSTREAM_FILES.items():
        rebuild_upstream_gzip(
            os.path.join(debian_dir, name),
            os.path.join(manual_dir, name),
            mtime,
            expected_sha256=sha256,
        )
    return manual_dir


def network_available(url=PROBE_URL, timeout=3.0):
    """Whether an HTTP HEAD request for `url` succeeds within `timeout` s.

    This asks what TFDS's download needs, not just whether a TCP connection
    opens (some sandboxes accept any connection). Name resolution has no
    timeout of its own, so the request runs in a daemon thread that is
    abandoned after `timeout` seconds.
    """
    result = []

    def probe():
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                result.append(response.status == 200)
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def unavailable_message(data_dir, debian_dir=DEBIAN_DIR):
    return (
        "Fashion-MNIST is not available: no prepared TFDS dataset in "
        f"{data_dir}, no Debian files in {debian_dir}, and no network "
        f"connection to {DOWNLOAD_HOST}. Either install the Debian package "
        f"(`sudo apt-get install -y {DEBIAN_PACKAGE}`), or run on a machine "
        "with network access so that TensorFlow Datasets can download it."
    )


def prepare_fashion_mnist(
    data_dir=None, debian_dir=DEBIAN_DIR, probe=network_available
):
    """Makes sure `fashion_mnist` is prepared in `data_dir`.

    Args:
        data_dir: TFDS data directory; defaults to `default_data_dir()`.
        debian_dir: where the Debian package puts the `.gz` files.
        probe: callable returning whether the download host is reachable.

    Returns:
        The source used: `"prepared"`, `"debian"` or `"download"`.

    Raises:
        DataUnavailableError: if no source is available.
    """
    data_dir = data_dir or default_data_dir()
    builder = tfds.builder(DATASET_NAME, data_dir=data_dir)
    if builder.is_prepared():
        return "prepared"
    if has_debian_files(debian_dir):
        os.makedirs(data_dir, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
            manual_dir = prepare_manual_dir(
                debian_dir, os.path.join(tmp, "manual")
            )
            builder.download_and_prepare(
                download_dir=os.path.join(tmp, "downloads"),
                download_config=tfds.download.DownloadConfig(
                    manual_dir=manual_dir, try_download_gcs=False
                ),
            )
        return "debian"
    if probe():
        builder.download_and_prepare()
        return "download"
    raise DataUnavailableError(unavailable_message(data_dir, debian_dir))


def load_fashion_mnist(
    data_dir=None, debian_dir=DEBIAN_DIR, probe=network_available
):
    """Returns `{"train": ds, "test": ds}` of `(uint8 image, int64 label)`.

    Images have shape `(28, 28, 1)`; labels are in `[0, 10)`. See
    `prepare_fashion_mnist()` for where the data comes from.

    Example:

    ```python
    splits = load_fashion_mnist()
    image, label = next(iter(splits["train"]))
    ```
    """
    data_dir = data_dir or default_data_dir()
    prepare_fashion_mnist(data_dir, debian_dir=debian_dir, probe=probe)
    return tfds.load(
        DATASET_NAME,
        split={"train": "train", "test": "test"},
        data_dir=data_dir,
        as_supervised=True,
        download=False,
    )
