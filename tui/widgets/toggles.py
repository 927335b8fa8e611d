"""Checkboxes and radio buttons whose state shows by a glyph, not by colour alone.

Textual draws a ticked and an unticked box as the same `X` in different colours.
Under `TERM=xterm`, `NO_COLOR` or a monochrome terminal every box then reads the
same, and a pull went to the wrong cache for it. These draw `[x]` / `[ ]` and
`(•)` / `( )`, in the toggle's colours as before, so the state reads in any terminal.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox, RadioButton

#: (on, off) glyphs of each kind of toggle.
CHECKBOX_GLYPHS = ("[x]", "[ ]")
RADIO_GLYPHS = ("(•)", "( )")


def _glyph(glyphs: tuple[str, str], value: bool, toggle: Checkbox | RadioButton) -> Content:
    on, off = glyphs
    glyph = on if value else off
    # A space after it: compact toggles put the label right against the button.
    return Content.assemble((glyph, toggle.get_visual_style("toggle--button")), " ")


class GlyphCheckbox(Checkbox):
    """A checkbox drawn `[x]` when ticked and `[ ]` when not."""

    @property
    def _button(self) -> Content:
        return _glyph(CHECKBOX_GLYPHS, self.value, self)


class GlyphRadioButton(RadioButton):
    """A radio button drawn `(•)` when chosen and `( )` when not."""

    @property
    def _button(self) -> Content:
        return _glyph(RADIO_GLYPHS, self.value, self)
