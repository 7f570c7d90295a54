package isolated

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/aminator-go/aminator/internal/bakery"
	"github.com/aminator-go/aminator/internal/testutil"
	"github.com/aminator-go/aminator/internal/testutil/e2etest"
)

// The dashboard in a real browser (Debian's chromium, driven through the
// DevTools protocol by chromedp): a bad token is refused; a team's token
// signs in, submits a bake from the page, watches it run stage by stage
// and complete, shows it verified by the bakery's key and its lineage,
// and reads its log; another team's bake is neither listed
// nor shown; an admin sees it and filters by team; the token is in no
// cookie and no URL; the page runs without
// an exception or a Content-Security-Policy violation.
// AMINATOR_DASHBOARD_SCREENSHOT=FILE keeps a screenshot of the page.
func TestDashboardInBrowser(t *testing.T) {
	c := isolated(t)
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the dashboard's browser test needs Debian's chromium (scripts/setup.sh installs it)")
	}
	b := mustOK(t, c.Aminate(t, "images", "import", "--role", "base", "dash-base", testutil.DebianBase(t)))
	dir := t.TempDir()
	url := startBakery(t, c, dir)
	app := mustOK(t, c.Aminate(t, "bakery", "token", "create", "--team", "app"))
	other := e2etest.BakeryClient{T: t, URL: url, Token: mustOK(t, c.Aminate(t, "bakery", "token", "create", "--team", "other"))}
	deb := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-dash", Version: "1.0", Files: map[string]string{"/opt/dash": "d\n"},
		Postinst: "echo installing aminator-dash; sleep 4"}) // long enough to be seen running
	// The other team's bake: queued behind ours (one worker) and cancelled
	// before it runs, so it costs nothing.
	hidden := testutil.BuildDeb(t, dir, testutil.Deb{Name: "aminator-dash-other", Version: "1.0"})

	ctx := browser(t, chrome)
	page := &dashPage{t: t, ctx: ctx, url: url}
	page.do(chromedp.EmulateViewport(1440, 1000), chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.ID("login-form")))

	// A bad token, then a well-formed but unknown one: refused.
	for _, bad := range []string{"not-a-token", "amt_0123456789abcdef_" + strings.Repeat("A", 43)} {
		page.login(bad)
		page.waitText("login-error", "refused") // the page clears it when a token is given
		if page.eval(`sessionStorage.getItem("aminator-token")`) != nil {
			t.Errorf("a refused token (%s) stays in sessionStorage", bad)
		}
	}
	page.login(app)
	page.do(chromedp.WaitVisible(chromedp.ID("app")))
	page.waitText("team", "team app")
	page.waitJS(`document.querySelectorAll("#nb-region option[value=local]").length === 1`)

	// Submit from the page.
	page.do(chromedp.Click(chromedp.ID("new-bake-toggle")), chromedp.WaitVisible(chromedp.ID("new-bake")),
		chromedp.SendKeys(chromedp.ID("nb-package"), deb), chromedp.SendKeys(chromedp.ID("nb-base"), b),
		chromedp.SetValue(chromedp.ID("nb-region"), "local"), chromedp.Click(chromedp.CSS("#new-bake button[type=submit]")))
	page.waitText("nb-result", "Queued as ")
	id := strings.TrimPrefix(page.text("nb-result"), "Queued as ")
	_, o := other.Submit(bakery.Request{Package: hidden, BaseID: b, Region: "local"})
	if code, body := other.Do("POST", "/api/v1/bakes/"+o.Bake.ID+"/cancel", nil); code != http.StatusOK {
		t.Errorf("cancel the other team's bake: %d %s", code, body)
	}

	sawRunning := page.watch(id)
	if !sawRunning {
		t.Error("the page never showed the bake running with a current stage")
	}
	stages := page.eval(`[...document.querySelectorAll("#d-stages li")].map(li => li.className + ":" + li.firstChild.textContent).join(",")`)
	for _, want := range []string{"done:create volume", "done:provision", "done:snapshot and register"} {
		if !strings.Contains(fmt.Sprint(stages), want) {
			t.Errorf("stages shown: %v (want %s)", stages, want)
		}
	}
	page.waitText("d-log", "stage provision")
	if log := page.text("d-log"); !strings.Contains(log, "bake started") || !strings.Contains(log, "aminator-dash") {
		t.Errorf("the log shown: %.500s", log)
	}
	page.waitJS(fmt.Sprintf(`!!document.querySelector('#rows tr[data-id="%s"] .state.completed')`, id))
	// The worker verified the image: signed by this host's own key (the
	// bakery's default), the imported base without provenance in its lineage.
	page.waitJS(fmt.Sprintf(`((document.querySelector('#rows tr[data-id="%s"] .prov.ok') || {}).textContent || "").startsWith("verified by aminator@")`, id))
	page.waitText("d-prov", "verified by aminator@")
	page.waitJS(`document.querySelectorAll("#d-lineage li").length === 2`)
	if l := page.text("d-lineage"); !strings.Contains(l, "aminator-dash=1.0") || !strings.Contains(l, "FAILED: ") || !strings.Contains(l, "no provenance") {
		t.Errorf("the lineage shown: %s", l)
	}
	page.screenshot("")

	// The other team's bake: not listed, and not shown when asked for.
	if n := page.eval(fmt.Sprintf(`document.querySelectorAll('#rows tr[data-id="%s"]').length`, o.Bake.ID)); n != float64(0) {
		t.Errorf("the other team's bake is listed")
	}
	page.eval(fmt.Sprintf(`location.hash = "#bake=%s"`, o.Bake.ID))
	page.waitText("d-state", "not found")
	if txt := page.text("detail"); strings.Contains(txt, "aminator-dash-other") {
		t.Errorf("the other team's bake is shown: %s", txt)
	}

	// Images and regions.
	page.do(chromedp.Click(chromedp.CSS(`.tabs button[data-tab=images]`)))
	page.waitText("families", "dash-base")
	page.waitText("families", "aminator-dash")
	page.screenshot("images")
	page.do(chromedp.Click(chromedp.CSS(`.tabs button[data-tab=regions]`)))
	page.waitText("regions", "live workers")
	page.screenshot("regions")

	// An admin sees every team's bakes, and filters by team.
	admin := mustOK(t, c.Aminate(t, "bakery", "token", "create", "--team", "ops", "--admin"))
	page.do(chromedp.Click(chromedp.ID("logout")))
	page.login(admin)
	page.waitText("team", "admin")
	page.do(chromedp.Click(chromedp.CSS(`.tabs button[data-tab=bakes]`)), chromedp.WaitVisible(chromedp.ID("f-team")),
		chromedp.SendKeys(chromedp.ID("f-team"), "other"))
	page.waitJS(fmt.Sprintf(`!!document.querySelector('#rows tr[data-id="%s"] .state.canceled') && !document.querySelector('#rows tr[data-id="%s"]')`, o.Bake.ID, id))

	if v := page.eval(`document.cookie + location.href`); strings.Contains(fmt.Sprint(v), app) || strings.Contains(fmt.Sprint(v), "amt_") {
		t.Errorf("the token is in a cookie or the URL: %v", v)
	}
	page.checkConsole()
}

// startBakery runs aminate serve on the cloud, a worker for region local
// taking one bake at a time, until the test ends; it returns the API's URL.
func startBakery(t *testing.T, c *cloud, packageDir string) string {
	t.Helper()
	addr := e2etest.FreeAddr(t)
	t.Cleanup(c.Serve(t, "--embedded-nats", "--listen", addr, "--worker-region", "local", "--workers", "1", "--package-dir", packageDir))
	e2etest.WaitAPI(t, "http://"+addr)
	return "http://" + addr
}

// browser starts a headless chromium with a new profile, with the flags
// that work as root on a machine without a network.
func browser(t *testing.T, chrome string) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true))
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// dashPage is the dashboard in a browser tab, and what its console said.
type dashPage struct {
	t        *testing.T
	ctx      context.Context
	url      string
	mu       sync.Mutex
	console  []chromedp.ConsoleMessage
	watching bool
}

func (p *dashPage) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if !p.watching {
		p.watching = true
		msgs := chromedp.Console(p.ctx)
		go func() {
			for m, err := range msgs {
				if err != nil {
					return
				}
				p.mu.Lock()
				p.console = append(p.console, m)
				p.mu.Unlock()
			}
		}()
	}
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

func (p *dashPage) login(token string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.ID("token")), chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS("#login-form button")))
}

func (p *dashPage) eval(js string) any {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (p *dashPage) text(id string) string {
	p.t.Helper()
	return fmt.Sprint(p.eval(fmt.Sprintf(`document.getElementById(%q).textContent`, id)))
}

// waitJS waits until a JavaScript expression is true (a minute at most).
func (p *dashPage) waitJS(js string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		p.t.Fatalf("waiting for %s: %v", js, err)
	}
}

func (p *dashPage) waitText(id, want string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf(`(document.getElementById(%q).textContent || "").includes(%q)`, id, want))
}

// watch follows the opened bake until it ends, saying whether the page
// showed it running with a current stage on the way; it must complete.
func (p *dashPage) watch(id string) (sawRunning bool) {
	p.t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		st := fmt.Sprint(p.eval(`document.getElementById("d-title").textContent + " " + document.getElementById("d-state").textContent +
			" " + document.querySelectorAll("#d-stages li.current").length`))
		switch st {
		case id + " running 1":
			if !sawRunning {
				p.screenshot("running")
			}
			sawRunning = true
		case id + " completed 0":
			return sawRunning
		}
		if strings.HasPrefix(st, id+" failed") || strings.HasPrefix(st, id+" canceled") || time.Now().After(deadline) {
			p.t.Fatalf("the bake shown as %q: %s", st, p.text("d-error"))
		}
	}
}

// screenshot keeps the page where AMINATOR_DASHBOARD_SCREENSHOT says
// (FILE, or FILE-name.png for a named one).
func (p *dashPage) screenshot(name string) {
	p.t.Helper()
	file := os.Getenv("AMINATOR_DASHBOARD_SCREENSHOT")
	if file == "" {
		return
	}
	if name != "" {
		file = strings.TrimSuffix(file, ".png") + "-" + name + ".png"
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(file, png, 0o644)
	}
	if err != nil {
		p.t.Error(err)
	}
}

// checkConsole fails on an exception or a CSP violation in the page (a
// refused request's 401 or 404 is expected).
func (p *dashPage) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
			p.t.Errorf("the page's console: %s", m)
		}
	}
}
