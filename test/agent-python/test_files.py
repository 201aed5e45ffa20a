"""Atomic writes (files.py): a write that fails — a full disk included — leaves the live file as it was."""
import errno
import os
import tempfile
import unittest
from unittest import mock

from imaging_lb_agent import files


class WriteAtomic(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "web.pem")
        files.write_atomic(self.path, b"OLD PEM\n", 0o600)

    def test_replaces_content_and_mode(self):
        files.write_atomic(self.path, b"NEW PEM\n", 0o600)
        self.assertEqual(files.read_bytes(self.path), b"NEW PEM\n")
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        self.assertEqual(os.listdir(self.dir), ["web.pem"])

    def test_a_full_disk_leaves_the_live_file_whole(self):
        real_fsync = os.fsync

        def full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        with mock.patch.object(os, "fsync", full):
            with self.assertRaises(OSError):
                files.write_atomic(self.path, b"NEW PEM THAT DOES NOT FIT\n" * 1000, 0o600)
        os.fsync = real_fsync
        self.assertEqual(files.read_bytes(self.path), b"OLD PEM\n")
        self.assertEqual(os.listdir(self.dir), ["web.pem"], "no temporary file left behind")

    def test_a_short_write_is_caught_before_the_rename(self):
        with mock.patch.object(os.path, "getsize", lambda p: 3):
            with self.assertRaises(OSError):
                files.write_atomic(self.path, b"NEW PEM\n", 0o600)
        self.assertEqual(files.read_bytes(self.path), b"OLD PEM\n")


if __name__ == "__main__":
    unittest.main()
