"""Write an SVG screenshot of each screen of spatialmix-tui (the README's pictures).

    python -m tui.screenshots --runs-dir DIR [--out docs] [--size 100x30]

It drives the real app headless (Textual's `run_test`) over the run folders in DIR and
saves each screen with `App.save_screenshot`, as the app's ctrl+s key does.
"""

import argparse
import asyncio
import os

from tui.app import SpatialmixApp


async def settled(pilot, seconds=1.0, timeout=30):
    """Pause, then wait until the footer has laid out its keys (slow on a loaded machine)."""
    from textual.widgets import Footer

    await pilot.pause(seconds)
    for _ in range(int(timeout / 0.1)):
        keys = pilot.app.screen.query(Footer).first().children if pilot.app.screen.query(Footer) else []
        if keys and keys[0].region.width:
            break
        await pilot.pause(0.1)
    await pilot.pause(0.2)


async def shoot(runs_dir, out, size, recipe=None, run=None):
    app = SpatialmixApp(runs_dir=runs_dir, screenshot_dir=out, export_dir=out)
    async with app.run_test(size=size) as pilot:
        while app.scans < 1 or app.device_sample is None:
            await pilot.pause(0.1)
        await pilot.pause(1.5)  # a CPU figure needs two samples
        if recipe:
            app.show_recipe(recipe)
        await settled(pilot, 0.5)
        app.save_screenshot("tui-recipes.svg", out)
        await pilot.press("2")
        if run:
            app.show_run(os.path.abspath(run))
        await settled(pilot)
        app.save_screenshot("tui-runs.svg", out)
        if run:
            app.show_results(os.path.abspath(run))
        else:
            await pilot.press("3")
        await settled(pilot)
        app.save_screenshot("tui-results.svg", out)
        await pilot.press("m")
        await settled(pilot)
        app.save_screenshot("tui-report.svg", out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tui.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--size", default="100x30")
    parser.add_argument("--recipe")
    parser.add_argument("--run", help="the run folder to show on the Runs and Results screens")
    args = parser.parse_args(argv)
    width, height = map(int, args.size.split("x"))
    os.makedirs(args.out, exist_ok=True)
    asyncio.run(shoot(args.runs_dir, os.path.abspath(args.out), (width, height), args.recipe, args.run))


if __name__ == "__main__":
    main()
