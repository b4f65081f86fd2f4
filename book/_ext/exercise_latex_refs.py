"""Cross-document references to exercises in the PDF.

sphinx-exercise (1.2.1) labels a numbered exercise in LaTeX as ``exercise:<label>`` and rewrites the
references made *inside the exercise's own document* to point there. A reference from another
document (the notation page's table of local symbols cites exercises of several chapters) is left as
Sphinx's ordinary number reference, ``\\hyperref[<docname>:<label>]{Exercise \\ref{<docname>:<label>}}``,
whose label nothing defines: the PDF printed "Exercise ??" with a dead link (LaTeX reported 18
unresolved references), while the HTML book was right.

This post-transform, for the LaTeX builder only, turns every number reference whose target is a
numbered exercise into sphinx-exercise's own ``exercise_latex_number_reference``, which links to
``exercise:<label>`` and prints the reference's resolved text ("Exercise 15", the number Sphinx gave
the exercise, the same one its title prints).
"""

from __future__ import annotations

from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform


class ExerciseNumberReferencesInLatex(SphinxPostTransform):
    """Point LaTeX number references at sphinx-exercise's ``exercise:<label>`` labels."""

    builders = ("latex",)
    default_priority = 23  # after sphinx-exercise's own reference update (22)

    def run(self, **kwargs) -> None:
        from sphinx_exercise.nodes import exercise_enumerable_node, exercise_latex_number_reference

        registry = getattr(self.env, "sphinx_exercise_registry", {})
        for node in list(self.document.findall(addnodes.number_reference)):
            label = node.get("refid") or node.get("refuri", "").rpartition("#")[2]
            target = registry.get(label)
            if target is None or not isinstance(target.get("node"), exercise_enumerable_node):
                continue
            new = exercise_latex_number_reference()
            new["refid"] = label
            new += [child.deepcopy() for child in node.children]
            node.replace_self(new)


def setup(app):
    app.add_post_transform(ExerciseNumberReferencesInLatex)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
