"""The page at / in a real browser: Debian's chromium, headless, driven by selenium through
Debian's chromedriver (nothing downloads a browser). Upload an input and an exemplar, see both
predicted masks over their images, paint a stroke on the input mask, translate again, and check
that the output changed near the stroke and hardly elsewhere.

The screenshot goes to tmp; LOMIT_SERVE_SCREENSHOT=docs/serve_page.png keeps it for the README."""
import base64
import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from lomit_fast.data.images import to_uint8
from lomit_fast.data.synthetic import synthetic_batch

from .server import post_files, running_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (make debian-packages)")

S, SHOWN = 64, 320  # model pixels, CSS pixels of each canvas
PAIR = (2, 3)  # input and exemplar: synthetic_batch(8, 64, seed=4242), a circle made red
STROKE = (8, 24, 52)  # x0, x1, y in model pixels: in the input's background, far from the circle
BRUSH = 8


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager: never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1240,680", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def data_url_image(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert(
        "RGB")).astype(int)


def canvas(driver, which: str) -> np.ndarray:
    """What a canvas shows, brought down to model pixels."""
    url = driver.execute_script(f"return document.getElementById('canvas-{which}').toDataURL()")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    return np.asarray(image.resize((S, S), Image.BOX)).astype(int)


def wait_body(driver, name: str, value: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, 60).until(
        lambda d: d.find_element("tag name", "body").get_attribute(name) == value)


def wait_runs(driver, runs: int) -> None:
    wait_body(driver, "data-runs", str(runs))


def drop(driver, panel: str, path) -> None:
    """Drop a file on a panel, as a drag from the desktop does (a drop event with the file)."""
    driver.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[1]), (c) => c.charCodeAt(0));"
        "const data = new DataTransfer();"
        "data.items.add(new File([bytes], arguments[2], {type: 'image/png'}));"
        "document.getElementById(arguments[0]).dispatchEvent("
        "  new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));",
        panel, base64.b64encode(path.read_bytes()).decode(), path.name)


def set_range(driver, slider: str, value: int) -> None:
    """Move a slider as a person does: its value, an input event, and on release a change."""
    driver.execute_script("const r = document.getElementById(arguments[0]); r.value = arguments[1];"
                          "r.dispatchEvent(new Event('input'));"
                          "r.dispatchEvent(new Event('change'));", slider, value)


def stroke(driver, which: str, points, erase: bool = False) -> None:
    """Drag the brush through `points` (model pixels) on a mask canvas."""
    from selenium.webdriver.common.action_chains import ActionChains
    if erase:
        driver.find_element("css selector", "input[name=mode][value=erase]").click()
    else:
        driver.find_element("css selector", "input[name=mode][value=paint]").click()
    element = driver.find_element("id", f"canvas-{which}")
    scale = SHOWN / S
    css = [(round((x + 0.5) * scale - SHOWN / 2), round((y + 0.5) * scale - SHOWN / 2))
           for x, y in points]
    actions = ActionChains(driver).move_to_element_with_offset(element, *css[0]).click_and_hold()
    for (x0, y0), (x1, y1) in zip(css, css[1:]):
        actions.move_by_offset(x1 - x0, y1 - y0)
    actions.release().perform()


def test_upload_see_masks_paint_and_translate_again(browser, tmp_path):
    images = to_uint8(synthetic_batch(8, S, seed=4242).images)[list(PAIR)]
    paths = []
    for name, array in zip(("input", "exemplar"), images):
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(array).save(paths[-1])
    with running_server() as (url, _):
        browser.get(url + "/")
        wait_body(browser, "data-ready", "true")
        assert "64x64 model" in browser.find_element("id", "model").text
        browser.find_element("id", "file-in").send_keys(str(paths[0]))  # chosen ...
        drop(browser, "panel-ex", paths[1])  # ... and dropped
        wait_runs(browser, 1)
        first = data_url_image(browser.find_element("id", "output").get_attribute("src"))
        assert first.shape == (S, S, 3)
        download = browser.find_element("id", "download")
        assert download.get_attribute("download") == "lomit_result.png"
        assert download.get_attribute("href") == browser.find_element(
            "id", "output").get_attribute("src")

        # Both predicted masks are shown over their images: a tint whose opacity follows the
        # mask, and an outline where it crosses 0.5.
        tint, opacity = browser.execute_script("return [TINT, TINT_OPACITY]")
        for which, image in (("in", images[0]), ("ex", images[1])):
            mask = canvas_mask(browser, which)
            assert (mask > 0.8).sum() > 50 and (mask < 0.1).sum() > 1000, which
            alpha = opacity * mask[..., None]
            blend = image * (1 - alpha) + np.array(tint) * alpha
            shown = canvas(browser, which)
            high = mask >= 0.5
            edge = np.zeros_like(high)  # pixels beside the outline
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    edge |= np.roll(high, (dy, dx), (0, 1)) != high
            assert np.abs(shown - blend)[~edge].mean() < 4, which
            assert np.abs(shown - blend)[edge].mean() > 10, which  # the outline is drawn
            assert np.abs(shown - image).mean(-1)[mask > 0.8].mean() > 30, which

        # Erasing where the input mask is (almost) empty hardly changes it, but from now on the
        # painted mask is the one sent: this run is the baseline of the stroke below.
        before = canvas_mask(browser, "in")
        stroke(browser, "in", [(4, 4), (12, 4)], erase=True)
        wait_runs(browser, 2)
        erased = np.abs(canvas_mask(browser, "in") - before)
        assert erased.max() < 0.1 and erased[12:].max() == 0 and erased[:, 20:].max() == 0
        baseline = data_url_image(browser.find_element("id", "output").get_attribute("src"))

        x0, x1, y = STROKE
        assert before[y - 2:y + 3, x0:x1 + 1].max() < 0.1  # painting where there was no mask
        stroke(browser, "in", [(x, y) for x in range(x0, x1 + 1, 4)])
        wait_runs(browser, 3)
        painted = canvas_mask(browser, "in")
        assert painted[y, x0:x1 + 1].min() > 0.9
        after = data_url_image(browser.find_element("id", "output").get_attribute("src"))
        browser.save_screenshot(str(tmp_path / "serve_page.png"))
        if os.environ.get("LOMIT_SERVE_SCREENSHOT"):
            shutil.copy(tmp_path / "serve_page.png", os.environ["LOMIT_SERVE_SCREENSHOT"])

        browser.find_element("id", "reset").click()  # back to the predicted masks
        wait_runs(browser, 4)
        assert np.array_equal(canvas_mask(browser, "in"), before)
        assert np.array_equal(
            data_url_image(browser.find_element("id", "output").get_attribute("src")), first)

        # Style strength 0 sends the input mask times 0: the output is the service's own for
        # an all-zero input mask; back at 100 % it is the first output again.
        set_range(browser, "strength", 0)
        wait_runs(browser, 5)
        zero = io.BytesIO()
        Image.new("L", (S, S), 0).save(zero, format="PNG")
        status, answer = post_files(url, {"image": paths[0].read_bytes(),
                                          "exemplar": paths[1].read_bytes(),
                                          "mask_in": zero.getvalue()})
        assert status == 200 and np.array_equal(
            data_url_image(browser.find_element("id", "output").get_attribute("src")),
            data_url_image("," + answer["image"]))
        assert not np.array_equal(data_url_image("," + answer["image"]), first)
        assert np.array_equal(canvas_mask(browser, "in"), before)  # the shown mask stays
        set_range(browser, "strength", 100)
        wait_runs(browser, 6)
        assert np.array_equal(
            data_url_image(browser.find_element("id", "output").get_attribute("src")), first)

        # The size slider sets the brush: a 16-pixel brush paints a 16-pixel-wide band.
        set_range(browser, "brush", 16)
        assert browser.find_element("id", "brush-value").text == "16"
        shown = canvas_mask(browser, "ex")[32] > 0.5  # the exemplar's own mask, before the stroke
        stroke(browser, "ex", [(12, 20), (12, 44)])
        wait_runs(browser, 7)
        band = (canvas_mask(browser, "ex")[32] > 0.5) & ~shown  # what the stroke added
        assert 14 <= band[:24].sum() <= 18, band[:24].astype(int)

    yy, xx = np.mgrid[0:S, 0:S] + 0.5
    distance = np.hypot(xx - np.clip(xx, x0 + 0.5, x1 + 0.5), yy - (y + 0.5))
    change = np.abs(after - baseline).max(-1)
    near, far = change[distance <= BRUSH / 2], change[distance > 16]
    assert near.mean() > 25, near.mean()  # translated where the stroke went
    # Elsewhere only the input's background style moves a little (a global code: the
    # background it is taken from shrank by the stroke).
    assert far.mean() < 4 and far.max() <= 16, (far.mean(), far.max())
    assert near.mean() > 8 * far.mean()


def canvas_mask(driver, which: str) -> np.ndarray:
    """The page's own S x S mask of `which`, in [0, 1]."""
    values = driver.execute_script(
        f"const m = state.masks['{which}'];"
        f"return Array.from(m.getContext('2d').getImageData(0, 0, {S}, {S}).data);")
    return np.asarray(values, float).reshape(S, S, 4)[..., 0] / 255
