"""The web dashboard in a real headless Chromium (the distribution's package, driven by Selenium
through the system chromedriver) against a real gateway and a real cpu node.

One gateway, one node and one browser, shared by steps that run as one test, in order (STEPS at
the end), so that pytest-xdist cannot split them across workers.
Set KGEN_UI_SCREENSHOTS=<dir> to also save screenshots of the jobs, job and workers pages.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from e2e_helpers import TASK_SRC, TOKEN, Daemon, daemon_env, kgen, wait_until
from kgen.core.client import Client

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SHOTS = os.environ.get("KGEN_UI_SCREENSHOTS")

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:   # the dev extra installs it
    webdriver = None

if webdriver is None or not CHROMIUM or not CHROMEDRIVER:
    pytest.skip("headless Chromium tests need the selenium package and the system chromium + chromedriver "
                "(apt-get install chromium chromium-driver; .ci/run installs them as root)", allow_module_level=True)

EVOLVE = dict(job_type="evolve", max_rounds=2, parallel_num=2)
# Job A must still be running when the page opens: every round runs (no early stop on cpu).
EVOLVE_A = dict(job_type="evolve", max_rounds=6, parallel_num=2, early_stop=False)


def _token(env: dict, gateway_url: str, role: str) -> str:
    done = kgen("token", "create", "--role", role, "--json", "--gateway", gateway_url, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["secret"]


class Site:
    """The cluster and the browser the tests share."""

    def __init__(self, home: Path):
        self.home = home
        self.env = daemon_env(home)
        self.db = home / "gateway.db"
        self.gateway = self.start_gateway(0)
        self.client_token = _token(self.env, self.gateway.url, "client")
        self.node_token = _token(self.env, self.gateway.url, "node")
        token_file = home / "node.token"
        token_file.write_text(self.node_token + "\n")
        token_file.chmod(0o600)
        self.node = Daemon(["node", "start", "--port", "0", "--devices", "1", "--gateway", self.gateway.url,
                            "--token-file", str(token_file)], self.env, "node")
        assert wait_until(lambda: any(w["healthy"] for w in self.api.list_workers()), 30)
        # Job A runs; with --max-running 1, job B waits in the queue behind it (the cancel target).
        self.job_a = self.api.submit_job(TASK_SRC, op_name="relu2", **EVOLVE_A)["job_id"]
        self.job_b = self.api.submit_job(TASK_SRC, op_name="relu2_again", **EVOLVE)["job_id"]
        self.driver = self.start_browser()

    def start_gateway(self, port: int) -> Daemon:
        # A short heartbeat TTL so a killed node turns unhealthy within seconds.
        return Daemon(["gateway", "start", "--port", str(port), "--db", str(self.db), "--stream-heartbeat", "1",
                       "--heartbeat-ttl", "2", "--max-running", "1"], self.env, "gateway")

    @property
    def api(self) -> Client:
        return Client(self.gateway.url, TOKEN, timeout=30)

    @staticmethod
    def start_browser():
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
            options.add_argument(arg)
        # Explicit browser and driver paths: Selenium Manager is never run, so nothing is looked up
        # or downloaded (selenium's DriverFinder skips it when the Service names a driver).
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(30)
        return driver

    def close(self):
        try:
            self.driver.quit()
        finally:
            if self.node.proc.poll() is None:
                self.node.stop()
            self.gateway.stop()

    # -- page helpers ----------------------------------------------------------------
    def open(self, hash_: str = "#/jobs"):
        self.driver.get(f"{self.gateway.url}/ui/{hash_}")

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, predicate, timeout: float = 60.0, what: str = ""):
        def safe():
            try:
                return predicate()
            except StaleElementReferenceException:
                return False
        if not wait_until(safe, timeout, 0.1):
            logs = "\n".join(self.gateway.lines[-15:])
            raise AssertionError(f"timed out waiting for {what or predicate}; page text:\n"
                                 f"{self.driver.find_element(By.TAG_NAME, 'body').text[:2000]}\ngateway:\n{logs}")

    def text(self, css: str) -> str:
        found = self.all(css)
        return found[0].text if found else ""

    def sign_in(self, token: str):
        self.open("#/jobs")
        self.wait(lambda: self.all("#token"), 20, "the login form")
        self.find("#token").send_keys(token)
        self.find("#login button[type=submit]").click()

    def shot(self, name: str, full: bool = False):
        if not SHOTS:
            return
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        size = self.driver.get_window_size()
        if full:   # the whole page, not just the first screen
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(size["width"], min(int(height) + 40, 4000))
        try:
            self.driver.save_screenshot(str(Path(SHOTS) / name))
        finally:
            self.driver.set_window_size(size["width"], size["height"])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("ui-home"))
    yield s
    s.close()


def _wrong_and_node_tokens_are_refused(site):
    site.sign_in("kgn_not-a-real-token")
    site.wait(lambda: "401" in site.text("#login-error"), 20, "the 401 message")
    assert site.driver.execute_script("return sessionStorage.getItem('kgen.token')") is None
    assert site.find("#nav").get_attribute("hidden") is not None

    site.sign_in(site.node_token)
    site.wait(lambda: "403" in site.text("#login-error"), 20, "the 403 message")
    assert "node tokens" in site.text("#login-error")
    assert site.driver.execute_script("return sessionStorage.getItem('kgen.token')") is None
    assert site.driver.get_cookies() == []


def _client_token_signs_in_and_cancels_a_queued_job(site):
    site.sign_in(site.client_token)
    site.wait(lambda: site.all(f"tr[data-job='{site.job_b}']"), 20, "job B in the jobs table")
    assert site.all(f"tr[data-job='{site.job_a}']")
    assert "client" in site.text("#role")
    # The token is in this tab's sessionStorage only: not in the URL, not in a cookie.
    assert site.client_token not in site.driver.current_url and site.driver.get_cookies() == []
    # Filters: the op filter narrows the table to job B, the id prefix to job A.
    site.find("#f-op").send_keys("again")
    site.wait(lambda: len(site.all("#jobs-body tr")) == 1 and site.all(f"tr[data-job='{site.job_b}']"), 10, "op filter")
    site.find("#f-op").clear()
    site.find("#f-id").send_keys(site.job_a[:6])
    site.wait(lambda: [r.get_attribute("data-job") for r in site.all("#jobs-body tr")] == [site.job_a], 10, "id filter")
    site.find("#f-id").clear()
    site.wait(lambda: len(site.all("#jobs-body tr")) == 2, 10, "filters cleared")
    site.shot("dashboard-jobs.png")

    site.find(f"tr[data-job='{site.job_b}'] a").click()
    site.wait(lambda: site.find("#cancel").is_enabled(), 20, "the cancel button")
    site.find("#cancel").click()
    site.wait(lambda: "cancelled" in site.text("#job-status"), 20, "the cancelled status")
    assert site.api.get_status(site.job_b)["status"] == "cancelled"
    assert not site.find("#cancel").is_enabled()


def _job_page_streams_events_live_and_resumes_after_the_gateway_restarts(site):
    site.open(f"#/job/{site.job_a}")
    site.wait(lambda: site.all("#events li"), 30, "the first events")
    first = [li.get_attribute("data-type") for li in site.all("#events li")]
    assert "succeeded" not in first, "job A ended before the page could watch it live"
    # New events reach the page without a reload.
    site.wait(lambda: len(site.all("#events li")) > len(first), 60, "a live event")
    assert "Live" in site.text("#stream-state")

    # Drop the connection: kill the gateway, restart it on the same port. The page reconnects
    # with ?after=<last seq> and shows every event exactly once, in order.
    port = urlparse(site.gateway.url).port
    site.gateway.kill9()
    site.wait(lambda: "reconnecting" in site.text("#stream-state"), 20, "the reconnecting state")
    site.gateway = site.start_gateway(port)
    site.wait(lambda: site.all("#events li[data-type='succeeded']"), 180, "job A succeeded")
    site.wait(lambda: "ended" in site.text("#stream-state"), 20, "the stream's end")
    seqs = [int(li.get_attribute("data-seq")) for li in site.all("#events li")]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    stored = [e["seq"] for e in site.api.events(site.job_a, follow=False) if "seq" in e]
    assert seqs == stored


def _job_page_shows_chart_candidates_and_kernel(site):
    site.open(f"#/job/{site.job_a}")
    site.wait(lambda: "succeeded" in site.text("#job-status"), 30, "job A's status")
    verified = [e for e in site.api.events(site.job_a, follow=False) if e.get("type") == "candidate_verified"]
    assert verified
    site.wait(lambda: len(site.all("svg.chart [data-candidate]")) == len(verified), 30, "one chart point per verdict")
    points = {p.get_attribute("data-candidate") for p in site.all("svg.chart [data-candidate]")}
    assert points == {e["candidate_id"] for e in verified}
    assert site.all("svg.chart path[data-series='best']")        # the best-so-far line
    rows = site.all("#candidates-body tr")
    assert {r.get_attribute("data-candidate") for r in rows} >= points
    assert site.all("#candidates-body [data-status='correct']")

    site.wait(lambda: "class ModelNew" in site.text("#best-source"), 30, "the best kernel's source")
    assert "class Model" in site.text("#reference-source")
    assert site.all("#best-source .tok-kw") and site.all("#best-source .tok-dec")   # highlighted: def, @triton.jit
    assert site.find("#dl-kernel").is_enabled() and site.find("#dl-reference").is_enabled()
    assert not site.find("#cancel").is_enabled()
    site.shot("dashboard-job.png", full=True)

    # The download button saves exactly the kernel the API serves as the job's result.
    downloads = site.home / "downloads"
    downloads.mkdir(exist_ok=True)
    site.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    site.find("#dl-kernel").click()
    assert wait_until(lambda: [p for p in downloads.glob("*.py")], 20), list(downloads.iterdir())
    saved = next(downloads.glob("*.py"))
    assert saved.name.startswith("relu2_")
    assert saved.read_text() == site.api.result(site.job_a)["best"]["source"]


HOSTILE_COMMENT = "# <img src=x onerror=\"window.pwned=1\"> <script>window.pwned=2</script> &amp;\n"


def _data_is_rendered_as_text_never_as_markup(site):
    job = site.api.submit_job(HOSTILE_COMMENT + TASK_SRC, op_name="relu2_markup")["job_id"]
    site.open(f"#/job/{job}")
    site.wait(lambda: "<script>" in site.text("#reference-source"), 30, "the reference with its comment")
    assert "&amp;" in site.text("#reference-source")          # shown as typed, not decoded
    assert site.driver.execute_script(
        "return document.querySelectorAll('main script, main img, main iframe').length") == 0
    assert site.driver.execute_script("return window.pwned === undefined")
    assert site.all("#reference-source .tok-com")              # highlighted as a comment
    site.find("#cancel").click()                               # leave the node to the next test
    site.wait(lambda: "cancelled" in site.text("#job-status"), 20, "the cancelled status")


def _highlighter_tokenizes_python(site):
    site.open("#/bench")
    tokens = site.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('./highlight.js').then((m) => done(m.tokenize(arguments[0]))).catch((e) => done(String(e)));
    """, 'def f(x):  # keep\n    return f"a#b" + r\'\\d\' + 0x1F + 1.5e-3 + """if\nelse"""\n@triton.jit\nclass K: pass\n')
    kinds = [(kind, text) for kind, text in tokens if kind not in ("ws", "plain", "op")]
    assert kinds == [("kw", "def"), ("fn", "f"), ("com", "# keep"), ("kw", "return"), ("str", 'f"a#b"'),
                     ("str", "r'\\d'"), ("num", "0x1F"), ("num", "1.5e-3"), ("str", '"""if\nelse"""'),
                     ("dec", "@triton.jit"), ("kw", "class"), ("fn", "K"), ("kw", "pass")], kinds
    # Every character comes back, in order: the highlighter never drops or invents text.
    assert "".join(text for _, text in tokens).startswith("def f(x):  # keep")


def _workers_page_shows_the_node_going_unhealthy(site):
    site.open("#/workers")
    site.wait(lambda: site.all("#workers-body tr[data-healthy='true']"), 30, "a healthy worker")
    row = site.text("#workers-body tr")
    assert "healthy" in row and "cpu" in row and "no" in row       # health word, backend, not suspect
    site.shot("dashboard-workers.png")
    site.node.kill9()
    site.wait(lambda: site.all("#workers-body tr[data-healthy='false']"), 30, "the worker turning unhealthy")
    assert "unhealthy" in site.text("#workers-body tr .health")


def _phone_width_and_bench_page(site):
    site.driver.set_window_size(390, 844)
    try:
        site.open("#/jobs")
        site.wait(lambda: site.all(f"tr[data-job='{site.job_a}']"), 20, "the jobs table")
        width = site.driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, f"the page is {width}px wide at phone width"
        site.open("#/bench")
        site.wait(lambda: "No bench results" in site.text("#bench-empty"), 10, "the empty bench state")
    finally:
        site.driver.set_window_size(1280, 1000)
    # Keyboard: a focused job link keeps focus across the table's 2 s refreshes.
    site.open("#/jobs")
    site.wait(lambda: site.all("#jobs-body tr"), 20, "the jobs table")
    site.driver.execute_script("document.querySelector('#jobs-body a').focus()")
    href = site.driver.switch_to.active_element.get_attribute("href")
    time.sleep(2.5)
    assert site.driver.switch_to.active_element.get_attribute("href") == href
    # From the skip link, Tab reaches the nav links and Enter follows one.
    site.driver.execute_script("document.querySelector('.skip').focus()")
    keys = ActionChains(site.driver)
    for _ in range(10):
        keys.send_keys(Keys.TAB).perform()
        if (site.driver.switch_to.active_element.get_attribute("href") or "").endswith("#/workers"):
            break
    else:
        raise AssertionError("Tab never reached the Workers link")
    keys.send_keys(Keys.ENTER).perform()
    site.wait(lambda: site.all("#workers"), 10, "the workers page opened by keyboard")


def _dark_colour_scheme_is_honoured(site):
    site.open("#/workers")
    site.wait(lambda: site.all("#workers"), 10, "the workers page")
    background = "return getComputedStyle(document.body).backgroundColor"
    light = site.driver.execute_script(background)
    site.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        dark = site.driver.execute_script(background)
    finally:
        site.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert light == "rgb(255, 255, 255)" and dark != light, (light, dark)
    assert sum(int(c) for c in dark[4:-1].split(",")) < 150      # a dark background, not just another one


def _signing_out_forgets_the_token(site):
    site.open("#/jobs")
    site.wait(lambda: site.all("#logout"), 10, "the sign-out button")
    site.find("#logout").click()
    site.wait(lambda: site.all("#token"), 10, "the login form")
    assert site.driver.execute_script("return sessionStorage.getItem('kgen.token')") is None


# One test, its steps in order: they share one gateway, node and browser, and later steps rely on
# earlier ones (job B cancelled while queued behind A; the node killed last). As one test, pytest-xdist
# cannot split them across workers.
STEPS = [
    _wrong_and_node_tokens_are_refused,
    _client_token_signs_in_and_cancels_a_queued_job,
    _job_page_streams_events_live_and_resumes_after_the_gateway_restarts,
    _job_page_shows_chart_candidates_and_kernel,
    _data_is_rendered_as_text_never_as_markup,
    _highlighter_tokenizes_python,
    _workers_page_shows_the_node_going_unhealthy,
    _phone_width_and_bench_page,
    _dark_colour_scheme_is_honoured,
    _signing_out_forgets_the_token,
]


def test_dashboard_in_a_real_browser(site):
    for step in STEPS:
        step(site)
