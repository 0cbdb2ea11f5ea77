"""``python -m joulecast.calibration.kernel_check``: see :func:`.report.main`."""

from joulecast.calibration.kernel_check.report import main

if __name__ == "__main__":
    raise SystemExit(main())
