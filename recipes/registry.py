"""Every recipe, by id. A recipe module defines `RECIPE` (a recipes.engine.Recipe)."""

import importlib

from zoo.errors import check_choice

# id -> module; EXPERIMENTS.md lists the rest, each lands as its own module
MODULES = {
    "convmixer-mixing": "recipes.convmixer_mixing",
}


def list_recipes():
    return sorted(MODULES)


def get_recipe(recipe_id):
    check_choice("recipe", recipe_id, list_recipes())
    return importlib.import_module(MODULES[recipe_id]).RECIPE
