import subprocess
import sys


def test_timm_and_smp_import_after_parsing():
    code = (
        "import parsing, torchvision, timm, segmentation_models_pytorch as smp;"
        "from parsing._torchvision import ensure_torchvision_importable as e;"
        "assert e() is False;"  # torchvision already imported: nothing more to do
        "print(smp.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_shim_is_idempotent():
    code = (
        "from parsing._torchvision import ensure_torchvision_importable as e, _libraries;"
        "e(); assert len(_libraries) <= 1; assert e() is False; assert len(_libraries) <= 1"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
