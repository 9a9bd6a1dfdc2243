"""Tests of examples/datasets.py: the offline Fashion-MNIST recipe.

None of these tests uses the network. The ones that read Debian's files run
only where `/usr/share/datasets/fashion-mnist` exists; where the environment
variable `CI` is set (`.ci/run` installs the package) they fail instead of
skipping, so a CI without the data cannot pass silently.
"""

import functools
import gzip
import hashlib
import http.server
import io
import os
import socket
import threading
import time
import unittest
from unittest import mock

import numpy as np
import tensorflow_datasets as tfds
from absl.testing import absltest

from examples import datasets
from tests import test_case

def require_debian_files(test, debian_dir=datasets.DEBIAN_DIR):
    """Skips `test` without the Debian files, or fails it when `CI` is set."""
    if datasets.has_debian_files(debian_dir):
        return
    message = (
        f"needs the Debian package {datasets.DEBIAN_PACKAGE} ({debian_dir})"
    )
    if os.environ.get("CI"):
        test.fail(f"{message}; CI must install it (see .ci/run)")
    test.skipTest(message)


def _write_plain_gzip(path, payload, mtime=0):
    """Writes `payload` as a gzip file without FNAME, as Debian ships it."""
    data = gzip.compress(payload, compresslevel=9, mtime=mtime)
    with open(path, "wb") as f:
        f.write(data)
    return data


def _offline_probe():
    return False


class RebuildUpstreamGzipTest(test_case.TestCase):
    def test_header_is_rewritten_and_stream_kept(self):
        temp_dir = self.get_temp_dir()
        payload = np.arange(5000, dtype=np.uint32).tobytes()
        source = os.path.join(temp_dir, "plain.gz")
        original = _write_plain_gzip(source, payload)
        target = os.path.join(temp_dir, "data-idx1-ubyte.gz")

        digest = datasets.rebuild_upstream_gzip(source, target, 1504176606)

        with open(target, "rb") as f:
            rebuilt = f.read()
        self.assertEqual(digest, hashlib.sha256(rebuilt).hexdigest())
        self.assertEqual(rebuilt[:4], b"\x1f\x8b\x08\x08")  # FLG = FNAME
        self.assertEqual(rebuilt[8:10], b"\x00\x03")  # XFL = 0, OS = Unix
        name_end = rebuilt.index(b"\x00", 10)
        self.assertEqual(rebuilt[10:name_end], b"data-idx1-ubyte")
        self.assertEqual(rebuilt[name_end + 1 :], original[10:])
        with gzip.GzipFile(fileobj=io.BytesIO(rebuilt)) as f:
            self.assertEqual(f.read(), payload)
            self.assertEqual(f.mtime, 1504176606)

    def test_checksum_mismatch_raises_and_writes_nothing(self):
        temp_dir = self.get_temp_dir()
        source = os.path.join(temp_dir, "plain.gz")
        _write_plain_gzip(source, b"labels")
        target = os.path.join(temp_dir, "labels.gz")
        with self.assertRaisesRegex(ValueError, "Checksum mismatch"):
            datasets.rebuild_upstream_gzip(
                source, target, 1, expected_sha256="0" * 64
            )
        self.assertFalse(os.path.exists(target))

    def test_expected_checksum_is_accepted(self):
        temp_dir = self.get_temp_dir()
        source = os.path.join(temp_dir, "plain.gz")
        _write_plain_gzip(source, b"labels")
        first = datasets.rebuild_upstream_gzip(
            source, os.path.join(temp_dir, "a.gz"), 7
        )
        second = datasets.rebuild_upstream_gzip(
            source, os.path.join(temp_dir, "b.gz"), 8
        )
        self.assertNotEqual(first, second)
        again = datasets.rebuild_upstream_gzip(
            source, os.path.join(temp_dir, "a.gz"), 7, expected_sha256=first
        )
        self.assertEqual(again, first)

    def test_rejects_gzip_with_flags(self):
        temp_dir = self.get_temp_dir()
        source = os.path.join(temp_dir, "named.gz")
        with gzip.GzipFile(source, "wb", mtime=0) as f:
            f.write(b"already has a file name")
        with self.assertRaisesRegex(ValueError, "no flags"):
            datasets.rebuild_upstream_gzip(
                source, os.path.join(temp_dir, "out.gz"), 0
            )

    def test_checksums_match_tfds_registry(self):
        registered = {
            url.rsplit("/", 1)[-1]: info.checksum
            for url, info in tfds.builder_cls("fashion_mnist")
            .url_infos.items()
        }
        ours = {name: sha for name, (_, sha) in datasets.UPSTREAM_FILES.items()}
        self.assertEqual(ours, registered)


class NetworkProbeTest(test_case.TestCase):
    def _serve(self, directory):
        handler = functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=directory
        )
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def test_probe_sees_a_served_file(self):
        directory = self.get_temp_dir()
        with open(os.path.join(directory, "labels.gz"), "wb") as f:
            f.write(b"data")
        url = self._serve(directory)
        self.assertTrue(datasets.network_available(f"{url}/labels.gz", 5.0))
        self.assertFalse(datasets.network_available(f"{url}/missing.gz", 5.0))

    def test_probe_reports_a_closed_port(self):
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            port = server.getsockname()[1]
        start = time.perf_counter()
        self.assertFalse(
            datasets.network_available(f"http://127.0.0.1:{port}/x", 2.0)
        )
        self.assertLess(time.perf_counter() - start, 2.5)


class RequireDebianFilesTest(test_case.TestCase):
    def test_fails_under_ci_and_skips_otherwise(self):
        missing_dir = os.path.join(self.get_temp_dir(), "missing")
        with mock.patch.dict(os.environ, {"CI": "true"}):
            with self.assertRaisesRegex(AssertionError, "CI must install it"):
                require_debian_files(self, missing_dir)
        with mock.patch.dict(os.environ):
            os.environ.pop("CI", None)
            with self.assertRaisesRegex(unittest.SkipTest, "dataset-fashion"):
                require_debian_files(self, missing_dir)


class PrepareFashionMnistTest(test_case.TestCase):
    def test_no_data_and_no_network_fails_fast(self):
        data_dir = self.get_temp_dir()
        empty_debian_dir = self.get_temp_dir()
        start = time.perf_counter()
        with self.assertRaises(datasets.DataUnavailableError) as context:
            datasets.load_fashion_mnist(
                data_dir, debian_dir=empty_debian_dir, probe=_offline_probe
            )
        self.assertLess(time.perf_counter() - start, 30.0)
        message = str(context.exception)
        self.assertIn("apt-get install -y dataset-fashion-mnist", message)
        self.assertIn("network", message)
        self.assertIn(data_dir, message)
        self.assertEqual(os.listdir(data_dir), [])

    def test_manual_dir_from_debian_files_matches_upstream(self):
        require_debian_files(self)
        manual_dir = datasets.prepare_manual_dir(
            datasets.DEBIAN_DIR, os.path.join(self.get_temp_dir(), "manual")
        )
        for name, (_, sha256) in datasets.UPSTREAM_FILES.items():
            with open(os.path.join(manual_dir, name), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), sha256)

    def test_prepare_from_debian_files_offline(self):
        require_debian_files(self)
        data_dir = self.get_temp_dir()
        source = datasets.prepare_fashion_mnist(
            data_dir, probe=self.fail  # must not be asked
        )
        self.assertEqual(source, "debian")
        self.assertEqual(os.listdir(data_dir), ["fashion_mnist"])
        self.assertEqual(
            datasets.prepare_fashion_mnist(data_dir, probe=self.fail),
            "prepared",
        )
        splits = datasets.load_fashion_mnist(data_dir, probe=self.fail)
        builder = tfds.builder("fashion_mnist", data_dir=data_dir)
        self.assertEqual(builder.info.splits["train"].num_examples, 60000)
        self.assertEqual(builder.info.splits["test"].num_examples, 10000)
        images, labels = next(iter(splits["test"].batch(1000)))
        self.assertEqual(tuple(images.shape), (1000, 28, 28, 1))
        self.assertEqual(images.dtype.name, "uint8")
        self.assertEqual(sorted(set(labels.numpy().tolist())), list(range(10)))


if __name__ == "__main__":
    absltest.main()
