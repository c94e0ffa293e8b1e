"""kmod-patch/sys and kmod-patch/conf hold plain copies of the files that emtun.patch adds, for
reading; the patch is what gets applied. A copy that is not byte-equal to the file the patch
creates misleads its reader (netmap_tun.c once lagged the patch by a whole change)."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KMOD = os.path.join(ROOT, "kmod-patch")
sys.dont_write_bytecode = True


def new_files(patch_text):
    """{path: content} of the files a git patch creates ("new file mode")."""
    files, path, body, new = {}, None, None, False
    for line in patch_text.splitlines(keepends=True):
        if line.startswith("diff --git "):
            if path and new:
                files[path] = "".join(body)
            path, body, new = line.split(" b/", 1)[1].rstrip("\n"), [], False
        elif line.startswith("new file mode"):
            new = True
        elif new and line.startswith("+") and not line.startswith("+++ "):
            body.append(line[1:])
        elif new and line.startswith("\\ No newline at end of file") and body:
            body[-1] = body[-1].rstrip("\n")
    if path and new:
        files[path] = "".join(body)
    return files


def copy_of(path):
    """Where kmod-patch keeps its plain copy of a tree path, or None."""
    if path.startswith("sys/amd64/conf/"):
        return os.path.join(KMOD, "conf", os.path.basename(path))
    if path.startswith("sys/"):
        return os.path.join(KMOD, path)
    return None


class PatchCopies(unittest.TestCase):
    def test_parser(self):
        text = ("diff --git a/x b/x\nindex 1..2 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
                "diff --git a/sys/n.c b/sys/n.c\nnew file mode 100644\nindex 0..3\n--- /dev/null\n"
                "+++ b/sys/n.c\n@@ -0,0 +1,2 @@\n+one\n+two\n\\ No newline at end of file\n")
        self.assertEqual(new_files(text), {"sys/n.c": "one\ntwo"})

    def test_copies_equal_the_patch(self):
        with open(os.path.join(KMOD, "emtun.patch")) as f:
            files = new_files(f.read())
        checked = []
        for path, content in sorted(files.items()):
            copy = copy_of(path)
            if copy is None or not os.path.exists(copy):
                continue
            with open(copy) as f:
                self.assertEqual(f.read(), content, "%s differs from what emtun.patch adds as %s"
                                 % (os.path.relpath(copy, ROOT), path))
            checked.append(path)
        self.assertIn("sys/dev/netmap/netmap_tun.c", checked)
        self.assertIn("sys/amd64/conf/EMTUN", checked)
