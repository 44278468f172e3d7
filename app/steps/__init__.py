"""One package per workflow step: ``model.py`` (Qt-free view-model) + ``view.py`` (its QWidget).

Steps never import each other; they meet in :class:`app.session.CaseSession`.
The shell (:mod:`app.main_window`) lists the steps in workflow order from
:data:`app.steps.base.STEP_ORDER` and shows those whose view exists.
"""
