"""`.ci/latex_log_check.py`, the gate `make pdf` puts on the LaTeX log, on log lines xelatex wrote here.

The three faults are quoted from the log of a build before the fixes of 2026-12-07 (fontspec's no-math,
breakable model names in tables); a clean log passes and the threshold is respected."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("latex_log_check", ROOT / ".ci" / "latex_log_check.py")
latex_log_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(latex_log_check)

MISSING = ("Missing character: There is no ^^F (U+0006) in font [FreeSerif.otf]/OT:script=l\n"
           "atn;language=dflt;!\n")
UNDEFINED = "LaTeX Warning: Reference `chapters/04_binary_and_log_space:ex-ch4-ks-level' on page 17 undefined on input line 1590.\n"
OVERFULL_84 = ("Overfull \\hbox (84.0564pt too wide) in paragraph at lines 26858--26858\n"
               "[]\\TU/FreeMono(0)/m/n/10 392V[]240H[]240H[]240H[]392V| \n []\n")
OVERFULL_36 = ("Overfull \\hbox (36.65065pt too wide) in paragraph at lines 572--572\n"
               "[]\\OT1/cmr/m/n/8 (\\OML/cmm/m/it/8 ^^K; ^^U\\OT1/cmr/m/n/8 )$| \n []\n")
CLEAN = "Output written on concrete_book.pdf (280 pages).\n" + OVERFULL_36


def test_each_fault_is_reported_with_its_count():
    found = latex_log_check.faults(CLEAN + MISSING * 16 + UNDEFINED + OVERFULL_84 * 6)
    assert len(found) == 3
    assert any(f.startswith("16x Missing character: There is no ^^F (U+0006)") for f in found)
    assert any(f.startswith("1x LaTeX Warning: Reference `chapters/04_binary") for f in found)
    assert any(f.startswith("6x Overfull \\hbox (84.0564pt") and "392V[]240H" in f for f in found)


def test_a_clean_log_passes_and_the_overfull_threshold_is_the_argument():
    assert latex_log_check.faults(CLEAN) == []  # 36.7 pt is under the default 40
    assert len(latex_log_check.faults(CLEAN, max_overfull=30.0)) == 1
    with pytest.raises(ValueError, match="max_overfull"):
        latex_log_check.faults(CLEAN, max_overfull=-1)


def test_the_command_line_exits_1_on_a_fault_and_0_on_a_clean_log(tmp_path, capsys):
    bad, good = tmp_path / "bad.log", tmp_path / "good.log"
    bad.write_text(CLEAN + MISSING)
    good.write_text(CLEAN)
    assert latex_log_check.main([str(bad)]) == 1
    assert "U+0006" in capsys.readouterr().out
    assert latex_log_check.main([str(good)]) == 0
    with pytest.raises(SystemExit):
        latex_log_check.main([str(tmp_path / "absent.log")])
