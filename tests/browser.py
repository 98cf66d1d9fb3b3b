"""Headless Chromium for the tests that look at pages as a reader or student does."""

import os
import shutil

import pytest


def chromium(window: str = "1280,1000"):
    """A selenium driver for headless Chromium; skips (fails on CI) when it is not installed."""
    chromium_path, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium_path and driver_path):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromedriver (scripts/test.sh installs them)")
        pytest.skip("chromium/chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={window}", "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)
