"""Every recipe, found by looking: each module of `recipes/paper_a/` and `recipes/paper_b/`
is one recipe whose id is the module name with `_` -> `-`, and which defines `RECIPE`.

There is no hand-kept table: a new module is a new recipe, and the contract tests in
tests/test_contracts.py iterate over `list_recipes()`.
"""

import importlib
import pkgutil

from zoo.errors import check_choice

PAPERS = ("paper_a", "paper_b")


def _modules():
    """{recipe id: module path}, by scanning the paper packages (imports nothing)."""
    found = {}
    for paper in PAPERS:
        package = importlib.import_module(f"recipes.{paper}")
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                found[info.name.replace("_", "-")] = f"recipes.{paper}.{info.name}"
    return found


def list_recipes():
    """Recipe ids, sorted."""
    return sorted(_modules())


def recipe_module(recipe_id):
    check_choice("recipe", recipe_id, list_recipes())
    return _modules()[recipe_id]


def get_recipe(recipe_id):
    """The `Recipe` of `recipe_id` (its module is imported on first use)."""
    recipe = importlib.import_module(recipe_module(recipe_id)).RECIPE
    assert recipe.id == recipe_id, f"{recipe_module(recipe_id)} defines RECIPE.id {recipe.id!r}, not {recipe_id!r}"
    return recipe
