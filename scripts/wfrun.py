#!/usr/bin/env python3
"""Run a GitHub Actions workflow's jobs here, as a runner would, to prove it runs.

Each job's steps run in order in a fresh Debian 12 root made by mmdebstrap
(as the guest image is made) standing in for the job's debian:bookworm
container: a chroot with /proc, /sys and /dev (so /dev/kvm) of the host.
`run:` steps run there with bash -eo pipefail and GitHub's environment files
(GITHUB_ENV, GITHUB_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY); `${{ }}`
expressions and `if:` conditions are evaluated (contexts github, env, matrix,
inputs, steps, runner; always(), success(), failure(), hashFiles(), ...).

What a runner gets from GitHub is replaced by named local stand-ins, each
printed when used:
  actions/checkout          a copy of this tree's tracked files
  actions/upload-artifact   a folder per artifact under --artifacts
  actions/download-artifact copies out of that folder
  actions/cache             ~/.cache/scx-vmctl: the host's artifact cache, bound in
                            (the tool keys its kernels, image, agent and crates.io
                            builds by their inputs, so this is a warm cache hit);
                            ~/.cargo: the host's, bound in with the toolchain;
                            other paths (target/): a local store by key, restored
                            at the step and saved at the job's end, as the service does
  the rustup installer      the host's Rust toolchain (~/.cargo, ~/.rustup) bound in
  the GitHub API            curl answering the "previous night's summary" step's
                            calls from --baseline-dir (a folder holding a previous
                            summary, served as its artifact's zip; empty: no run yet)
  OWNER/scx-vmctl@REF, ./   this tree, as the composite action action.yml
A matrix is cut to the one cell --cell picks; --input sets workflow_dispatch
inputs; --env overrides the workflow's env (e.g. NIGHTLY_ACCEL=tcg); --with
overrides an input where a job uses this tree's action (a shorter duration).
Any other step that reaches the internet beyond the package registries is
refused by name.

  wfrun.py WORKFLOW [--jobs a,b] [--cell k=v,...] [--input k=v] [--env K=V]
           [--with k=v] [--artifacts DIR] [--baseline-dir DIR] [--work DIR]

Exit 0 when every job it ran succeeded; 1 when one failed; 2 bad input.
Needs root (chroot, mounts), mmdebstrap, PyYAML.
"""

import argparse
import fnmatch
import glob
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile

import yaml

TREE = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HOME = os.path.expanduser("~")
ARTIFACT_CACHE = os.path.join(HOME, ".cache", "scx-vmctl")
OWN_CACHE = os.path.join(ARTIFACT_CACHE, "wfrun")
SUITE = "bookworm"
BASE_PACKAGES = ["ca-certificates"]
REPO = "scx-vmctl"
WORKSPACE = f"/__w/{REPO}/{REPO}"


def log(msg):
    print(f"[wfrun] {msg}", flush=True)


def die(msg, code=2):
    print(f"wfrun: {msg}", file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------- expressions

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>\|\||&&|==|!=|<=|>=|[!()<>,\[\]])|"
    r"(?P<id>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_*][A-Za-z0-9_-]*)*))"
)



# curl for the nightly's baseline step: the latest successful run (one when
# --baseline-dir holds files), its artifacts, and the artifact's zip.
GITHUB_API_STANDIN = r"""curl() {
	local out="" url="" z=/__w/_standin/api/nightly-summary.zip
	while [ $# -gt 0 ]; do
		case "$1" in -o) out=$2; shift 2 ;; -H) shift 2 ;; -*) shift ;; *) url=$1; shift ;; esac
	done
	case "$url" in
	https://api.github.com/repos/*/actions/workflows/*/runs*)
		cat /__w/_standin/api/runs.json ;;
	https://api.github.com/repos/*/actions/runs/1/artifacts)
		echo '{"artifacts":[{"name":"nightly-summary","archive_download_url":"https://api.github.com/standin/nightly-summary.zip"}]}' ;;
	https://api.github.com/standin/nightly-summary.zip) cp "$z" "${out:-/dev/stdout}" ;;
	*) echo "wfrun: no stand-in for curl $url" >&2; return 22 ;;
	esac
}
"""

class Expr:
    """GitHub's expression language, as much of it as our workflows use."""

    def __init__(self, text, ctx, funcs):
        self.toks = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"cannot parse expression `{text}` at {pos}")
            kind = m.lastgroup
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0
        self.ctx = ctx
        self.funcs = funcs

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, want=None):
        t = self.peek()
        if want is not None and t[1] != want:
            raise ValueError(f"expected `{want}`, got `{t[1]}`")
        self.i += 1
        return t

    def value(self):
        v = self.or_()
        if self.i != len(self.toks):
            raise ValueError(f"trailing `{self.peek()[1]}`")
        return v

    def or_(self):
        v = self.and_()
        while self.peek()[1] == "||":
            self.take()
            r = self.and_()
            v = v if truthy(v) else r
        return v

    def and_(self):
        v = self.cmp()
        while self.peek()[1] == "&&":
            self.take()
            r = self.cmp()
            v = r if truthy(v) else v
        return v

    def cmp(self):
        v = self.unary()
        while self.peek()[1] in ("==", "!="):
            op = self.take()[1]
            r = self.unary()
            eq = str_of(v).lower() == str_of(r).lower() if isinstance(v, str) or isinstance(r, str) else v == r
            v = eq if op == "==" else not eq
        return v

    def unary(self):
        if self.peek()[1] == "!":
            self.take()
            return not truthy(self.unary())
        return self.atom()

    def atom(self):
        kind, tok = self.take()
        if kind == "str":
            return tok[1:-1].replace("''", "'")
        if kind == "num":
            return float(tok) if "." in tok else int(tok)
        if tok == "(":
            v = self.or_()
            self.take(")")
            return v
        if kind == "id":
            if tok in ("true", "false"):
                return tok == "true"
            if tok == "null":
                return None
            if self.peek()[1] == "(":
                self.take("(")
                args = []
                while self.peek()[1] != ")":
                    args.append(self.or_())
                    if self.peek()[1] == ",":
                        self.take()
                self.take(")")
                f = self.funcs.get(tok.lower())
                if f is None:
                    raise ValueError(f"unknown function {tok}()")
                return f(*args)
            v = self.ctx
            for part in tok.split("."):
                v = v.get(part) if isinstance(v, dict) else None
            return v
        raise ValueError(f"unexpected `{tok}`")


def truthy(v):
    return v not in (None, False, "", 0)


def str_of(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def hash_files(*patterns):
    h = hashlib.sha256()
    files = sorted({f for p in patterns for f in glob.glob(os.path.join(TREE, p), recursive=True) if os.path.isfile(f)})
    for f in files:
        with open(f, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest() if files else ""


class Job:
    def __init__(self, name, spec, run):
        self.name = name
        self.spec = spec
        self.run = run
        self.status = "success"
        self.steps = {}
        self.env = {}
        self.path = []
        self.summary = []
        self.post = []

    def funcs(self):
        return {
            "always": lambda: True,
            "success": lambda: self.status == "success",
            "failure": lambda: self.status == "failure",
            "cancelled": lambda: False,
            "hashfiles": hash_files,
            "contains": lambda a, b: (str_of(b).lower() in str_of(a).lower()) if not isinstance(a, list) else b in a,
            "startswith": lambda a, b: str_of(a).lower().startswith(str_of(b).lower()),
            "format": lambda f, *a: re.sub(r"\{(\d+)\}", lambda m: str_of(a[int(m.group(1))]), f),
            "tojson": lambda v: json.dumps(v),
        }

    def ctx(self, extra=None):
        c = {
            "github": self.run.github,
            "env": dict(self.env),
            "matrix": self.run.cell.get(self.name, {}),
            "steps": self.steps,
            "runner": {"os": "Linux", "arch": "X64", "temp": "/__w/_temp"},
            "needs": {n: {"result": self.run.results.get(n, "skipped")} for n in needs_of(self.spec)},
        }
        c.update(extra or {})
        return c

    def eval(self, text, extra=None):
        if not isinstance(text, str):
            return text
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: str_of(Expr(m.group(1), self.ctx(extra), self.funcs()).value()), text)

    def cond(self, text, extra=None):
        if text is None:
            return self.status == "success"
        if isinstance(text, bool):
            return text
        t = text.strip()
        if t.startswith("${{") and t.endswith("}}"):
            t = t[3:-2]
        v = truthy(Expr(t, self.ctx(extra), self.funcs()).value())
        # without a status function, GitHub reads `if: x` as `success() && x`
        if not re.search(r"\b(always|success|failure|cancelled)\s*\(", t):
            v = v and self.status == "success"
        return v


def needs_of(spec):
    n = spec.get("needs", [])
    return [n] if isinstance(n, str) else list(n)


# ---------------------------------------------------------------- the root


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def base_root():
    """A Debian root tarball by mmdebstrap, made once per suite and package list."""
    os.makedirs(OWN_CACHE, exist_ok=True)
    ver = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True).stdout.strip()
    key = hashlib.sha256(f"{SUITE}|{','.join(BASE_PACKAGES)}|{ver}|updates,security".encode()).hexdigest()[:16]
    tar = os.path.join(OWN_CACHE, f"root-{SUITE}-{key}.tar")
    if not os.path.exists(tar):
        log(f"making a fresh Debian root (mmdebstrap {SUITE}, minbase, {' '.join(BASE_PACKAGES)}): once, cached in {tar}")
        tmp = tar[: -len(".tar")] + ".tmp.tar"
        # the suites of the debian:bookworm image: the release, its updates and security
        mirrors = [
            f"deb http://deb.debian.org/debian {SUITE} main",
            f"deb http://deb.debian.org/debian {SUITE}-updates main",
            f"deb http://deb.debian.org/debian-security {SUITE}-security main",
        ]
        sh(["mmdebstrap", "--quiet", "--variant=minbase", "--format=tar", f"--include={','.join(BASE_PACKAGES)}", SUITE, tmp] + mirrors)
        os.rename(tmp, tar)
    return tar


class Root:
    """One job's container: a fresh root and what is mounted into it."""

    def __init__(self, path):
        self.path = path
        self.mounts = []

    def p(self, inner):
        return os.path.join(self.path, inner.lstrip("/"))

    def bind(self, src, inner, what):
        os.makedirs(src, exist_ok=True)
        dst = self.p(inner)
        os.makedirs(dst, exist_ok=True)
        sh(["mount", "--rbind", src, dst])
        sh(["mount", "--make-rslave", dst])
        self.mounts.append(dst)
        if what:
            log(f"stand-in: {what}")

    def setup(self, tar):
        if os.path.exists(self.path):
            shutil.rmtree(self.path)
        os.makedirs(self.path)
        sh(["tar", "-xf", tar, "-C", self.path])
        shutil.copy("/etc/resolv.conf", self.p("/etc/resolv.conf"))
        sh(["mount", "-t", "proc", "proc", self.p("/proc")])
        self.mounts.append(self.p("/proc"))
        for d in ("/sys", "/dev"):
            sh(["mount", "--rbind", d, self.p(d)])
            sh(["mount", "--make-rslave", self.p(d)])
            self.mounts.append(self.p(d))
        self.bind(os.path.join(OWN_CACHE, "apt-archives"), "/var/cache/apt/archives", None)
        for d in ("/__w/_temp", WORKSPACE, "/__w/_actions"):
            os.makedirs(self.p(d), exist_ok=True)

    def teardown(self):
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-R", m], check=False)
        self.mounts = []


# ---------------------------------------------------------------- steps


STANDIN_RUSTUP = re.compile(r"curl[^\n|]*https://sh\.rustup\.rs[^\n|]*\|\s*sh[^\n]*")
INTERNET = re.compile(r"\b(curl|wget)\b[^\n]*https?://(?!deb\.debian\.org|security\.debian\.org|crates\.io|static\.crates\.io|registry\.npmjs\.org|pypi\.org)")


class Run:
    def __init__(self, args):
        self.args = args
        self.cell = {}
        self.results = {}
        self.artifacts = os.path.abspath(args.artifacts)
        self.inputs = dict(kv.split("=", 1) for kv in args.input)
        self.github = {
            "event_name": "workflow_dispatch",
            "event": {"inputs": self.inputs},
            "repository": f"local/{REPO}",
            "token": "local-stand-in",
            "workspace": WORKSPACE,
            "action_path": "",
            "run_id": "1",
            "sha": subprocess.run(["git", "-C", TREE, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
        }

    def run_script(self, job, root, script, env, workdir, shell="bash", name=""):
        tmp = root.p("/__w/_temp")
        files = {k: os.path.join(tmp, f"{k.lower()}_{len(job.steps)}_{time.time_ns()}") for k in ("GITHUB_ENV", "GITHUB_PATH", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")}
        for f in files.values():
            open(f, "w").close()
        body = os.path.join(tmp, f"step_{time.time_ns()}.sh")
        with open(body, "w") as f:
            f.write(script)
        full = {
            "HOME": "/root",
            "PATH": ":".join(job.path + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": WORKSPACE,
            "GITHUB_REPOSITORY": self.github["repository"],
            "RUNNER_TEMP": "/__w/_temp",
            "RUNNER_OS": "Linux",
            "DEBIAN_FRONTEND": "noninteractive",
            "LANG": "C.UTF-8",
        }
        full.update(job.env)
        full.update(env)
        for k, v in files.items():
            full[k] = "/" + os.path.relpath(v, root.path)
        argv = {"bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"], "sh": ["sh", "-e"]}.get(shell)
        if argv is None:
            raise ValueError(f"step `{name}`: shell `{shell}` is not supported here")
        inner = "/" + os.path.relpath(body, root.path)
        cmd = ["chroot", root.path, "/usr/bin/env", "-i"] + [f"{k}={v}" for k, v in full.items()]
        cmd += ["bash", "-c", f'cd "$1" && shift && exec "$@"', "cd", workdir] + argv + [inner]
        rc = subprocess.run(cmd).returncode
        # what the step handed to the next ones
        out = {}
        for k, f in files.items():
            text = open(f).read()
            if k == "GITHUB_PATH":
                job.path = [l for l in text.splitlines() if l.strip()][::-1] + job.path
            elif k == "GITHUB_STEP_SUMMARY":
                job.summary.append(text)
            else:
                d = parse_env_file(text)
                if k == "GITHUB_ENV":
                    job.env.update(d)
                else:
                    out.update(d)
        return rc, out

    def step(self, job, root, s, extra=None, where=""):
        name = s.get("name") or s.get("uses") or s.get("run", "").splitlines()[0]
        if not job.cond(s.get("if"), extra):
            log(f"{where}step `{name}`: skipped (if: {s.get('if', 'success()')})")
            return
        t0 = time.time()
        log(f"{where}step `{name}`")
        env = {k: job.eval(str_of(v), extra) for k, v in (s.get("env") or {}).items()}
        rc, outputs = 0, {}
        if "run" in s:
            script = s["run"]
            if STANDIN_RUSTUP.search(script):
                script = STANDIN_RUSTUP.sub(": stand-in for the rustup installer: the host Rust toolchain is bound at ~/.cargo and ~/.rustup", script)
                log("stand-in: the rustup installer -> the host's Rust toolchain (~/.cargo, ~/.rustup)")
            if "api.github.com" in script:
                if self.args.baseline_dir is None:
                    die(f"step `{name}` calls the GitHub API: give --baseline-dir DIR (its stand-in)")
                # The step itself runs (its jq and unzip included); only curl is
                # a stand-in, answering the API's three calls from the folder.
                script = GITHUB_API_STANDIN + script
                log(f"stand-in: the GitHub API (previous night's summary) -> curl answered from the folder {self.args.baseline_dir}")
            elif INTERNET.search(job.eval(script, extra)):
                die(f"step `{name}` reaches the internet beyond the package registries; no stand-in for it", 2)
            script = job.eval(script, extra)
            wd = job.eval(s.get("working-directory", WORKSPACE), extra)
            rc, outputs = self.run_script(job, root, script, env, wd, s.get("shell", "bash"), name)
        else:
            rc, outputs = self.uses(job, root, s, env, extra, where)
        if s.get("id"):
            job.steps[s["id"]] = {"outputs": outputs, "outcome": "success" if rc == 0 else "failure"}
        ok = rc == 0 or truthy(s.get("continue-on-error"))
        log(f"{where}step `{name}`: {'ok' if rc == 0 else f'exit {rc}'} ({time.time() - t0:.0f} s)")
        if not ok:
            job.status = "failure"

    def uses(self, job, root, s, env, extra, where):
        u = s["uses"]
        w = {k: job.eval(str_of(v), extra) for k, v in (s.get("with") or {}).items()}
        if u.startswith("actions/checkout@"):
            files = subprocess.run(["git", "-C", TREE, "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
            for f in filter(None, files):
                f = f.decode()
                src, dst = os.path.join(TREE, f), os.path.join(root.p(WORKSPACE), f)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if os.path.lexists(src):
                    shutil.copy2(src, dst, follow_symlinks=False)
            log(f"stand-in: actions/checkout -> a copy of {TREE}'s {len(files) - 1} tracked files")
            return 0, {}
        if u.startswith("actions/cache@"):
            return 0, self.cache(job, root, w)
        if u.startswith("actions/upload-artifact@"):
            return self.upload(job, root, w), {}
        if u.startswith("actions/download-artifact@"):
            return self.download(root, w), {}
        if u == "./" or re.fullmatch(r"[\w.-]+/scx-vmctl@[\w./-]+", u):
            return self.composite(job, root, u, w, env, where)
        die(f"step `{s.get('name', u)}`: no stand-in for `uses: {u}`")

    def cache(self, job, root, w):
        """actions/cache: ~/.cache/scx-vmctl and ~/.cargo are the host's,
        bound in; other paths (a cargo target directory) are kept in a local
        store by key, restored here and saved when the job ends, as the cache
        service would."""
        key = w.get("key", "")
        kept = []
        for p in [p.strip() for p in w.get("path", "").splitlines() if p.strip()]:
            inner = p.replace("~", "/root", 1) if p.startswith("~") else (p if p.startswith("/") else os.path.join(WORKSPACE, p))
            if inner == "/root/.cache/scx-vmctl":
                log(f"stand-in: actions/cache of {p} -> the host's artifact cache, bound in (a warm hit)")
            elif inner.startswith("/root/.cargo"):
                log(f"stand-in: actions/cache of {p} -> the host's, bound in with its toolchain")
            else:
                kept.append(inner)
        if not kept:
            return {"cache-hit": "true"}
        store = os.path.join(OWN_CACHE, "actions-cache")
        slot = os.path.join(store, hashlib.sha256(key.encode()).hexdigest()[:16])
        hit = os.path.isdir(slot)
        if hit:
            for inner in kept:
                src = os.path.join(slot, inner.strip("/").replace("/", "%"))
                if os.path.isdir(src):
                    shutil.copytree(src, root.p(inner), symlinks=True, dirs_exist_ok=True)
            log(f"stand-in: actions/cache {key}: restored {kept} from {slot}")
        else:
            log(f"stand-in: actions/cache {key}: a miss; {kept} are saved when the job ends")
            job.post.append(lambda: self.cache_save(root, slot, kept, key))
        return {"cache-hit": "true" if hit else "false"}

    def cache_save(self, root, slot, kept, key):
        tmp = slot + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for inner in kept:
            if os.path.isdir(root.p(inner)):
                shutil.copytree(root.p(inner), os.path.join(tmp, inner.strip("/").replace("/", "%")), symlinks=True)
        if os.path.isdir(tmp):
            os.makedirs(os.path.dirname(slot), exist_ok=True)
            os.rename(tmp, slot)
            log(f"stand-in: actions/cache {key}: saved {kept}")

    def upload(self, job, root, w):
        name = w.get("name", "artifact")
        paths = [p.strip() for p in w.get("path", "").splitlines() if p.strip()]
        dest = os.path.join(self.artifacts, name)
        shutil.rmtree(dest, ignore_errors=True)
        found = []
        for p in paths:
            full = p if p.startswith("/") else os.path.join(WORKSPACE, p)
            found += glob.glob(root.p(full), recursive=True)
        if not found:
            log(f"upload-artifact {name}: no files at {paths} ({w.get('if-no-files-found', 'warn')})")
            return 1 if w.get("if-no-files-found") == "error" else 0
        # like upload-artifact: paths relative to their least common ancestor
        base = os.path.commonpath(found) if len(found) > 1 else (found[0] if os.path.isdir(found[0]) else os.path.dirname(found[0]))
        for f in found:
            rel = os.path.relpath(f, base)
            d = os.path.join(dest, rel) if rel != "." else dest
            if os.path.isdir(f):
                shutil.copytree(f, d, dirs_exist_ok=True)
            else:
                os.makedirs(os.path.dirname(d), exist_ok=True)
                shutil.copy2(f, d)
        log(f"stand-in: upload-artifact {name} -> {dest}")
        return 0

    def download(self, root, w):
        path = w.get("path", ".")
        into = root.p(path if path.startswith("/") else os.path.join(WORKSPACE, path))
        names = sorted(os.listdir(self.artifacts)) if os.path.isdir(self.artifacts) else []
        if w.get("name"):
            picked, flat = [w["name"]], True
        else:
            picked, flat = [n for n in names if fnmatch.fnmatch(n, w.get("pattern", "*"))], truthy(w.get("merge-multiple"))
        for n in picked:
            src = os.path.join(self.artifacts, n)
            if not os.path.isdir(src):
                log(f"download-artifact: no artifact {n}")
                return 1
            shutil.copytree(src, into if flat else os.path.join(into, n), dirs_exist_ok=True)
        log(f"stand-in: download-artifact {picked} -> {path}")
        return 0

    def composite(self, job, root, u, w, env, where):
        inner = f"/__w/_actions/{REPO}/local"
        dst = root.p(inner)
        if not os.path.exists(os.path.join(dst, "action.yml")):
            files = subprocess.run(["git", "-C", TREE, "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
            for f in filter(None, files):
                f = f.decode()
                os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
                shutil.copy2(os.path.join(TREE, f), os.path.join(dst, f), follow_symlinks=False)
        log(f"stand-in: uses {u} -> this tree's action.yml at {inner}")
        action = yaml.safe_load(open(os.path.join(TREE, "action.yml")))
        inputs = {k: str_of(v.get("default", "")) for k, v in (action.get("inputs") or {}).items()}
        for k in w:
            if k not in inputs:
                die(f"uses {u}: unknown input `{k}` (valid: {', '.join(inputs)})")
        inputs.update(w)
        for kv in self.args.with_:
            k, v = kv.split("=", 1)
            if k not in inputs:
                die(f"--with {kv}: {u} has no input `{k}` (valid: {', '.join(inputs)})", 2)
            log(f"{where}input {k}: {inputs[k]!r} -> {v!r} (--with)")
            inputs[k] = v
        saved_steps, job.steps = job.steps, {}
        github = dict(self.github, action_path=inner)
        extra = {"inputs": inputs, "github": github}
        for s in action["runs"]["steps"]:
            if "run" in s and "shell" not in s:
                die("action.yml: a composite action's run step needs `shell:`")
            s = dict(s)
            s["env"] = dict(env, **(s.get("env") or {}))
            self.step(job, root, s, extra, where=f"{where}{u}: ")
        outputs = {k: job.eval(str_of(v.get("value", "")), extra) for k, v in (action.get("outputs") or {}).items()}
        job.steps = saved_steps
        return (0 if job.status == "success" else 1), outputs

    def job(self, name, spec, tar):
        job = Job(name, spec, self)
        job.env = {k: job.eval(str_of(v)) for k, v in (self.workflow.get("env") or {}).items()}
        job.env.update(dict(kv.split("=", 1) for kv in self.args.env))
        job.env.update({k: job.eval(str_of(v)) for k, v in (spec.get("env") or {}).items()})
        job.env.update(dict(kv.split("=", 1) for kv in self.args.env))
        root = Root(os.path.join(self.work, f"root-{name}"))
        t0 = time.time()
        try:
            root.setup(tar)
            log(f"job `{name}` ({spec.get('name', name)}) in a fresh {SUITE} root {root.path}")
            root.bind(os.path.join(HOME, ".cargo"), "/root/.cargo", None)
            root.bind(os.path.join(HOME, ".rustup"), "/root/.rustup", None)
            root.bind(ARTIFACT_CACHE, "/root/.cache/scx-vmctl", None)
            if self.args.baseline_dir is not None:
                # The previous night's artifact as GitHub serves it: a zip.
                zdir = os.path.join(self.work, "standin-api")
                os.makedirs(zdir, exist_ok=True)
                files = sorted(os.listdir(self.args.baseline_dir))
                with zipfile.ZipFile(os.path.join(zdir, "nightly-summary.zip"), "w") as z:
                    for f in files:
                        z.write(os.path.join(self.args.baseline_dir, f), f)
                # An empty folder is the first night: no successful run yet.
                with open(os.path.join(zdir, "runs.json"), "w") as f:
                    json.dump({"workflow_runs": [{"id": 1}] if files else []}, f)
                root.bind(zdir, "/__w/_standin/api", None)
            limit = spec.get("timeout-minutes")
            for s in spec.get("steps", []):
                if limit and time.time() - t0 > float(limit) * 60:
                    log(f"job `{name}`: timeout-minutes {limit} passed")
                    job.status = "failure"
                    break
                self.step(job, root, s)
            if job.status == "success":
                for post in job.post:
                    post()
        finally:
            root.teardown()
            if not self.args.keep_roots:
                shutil.rmtree(root.path, ignore_errors=True)
        summary = "".join(job.summary)
        if summary:
            with open(os.path.join(self.work, f"{name}.summary.md"), "w") as f:
                f.write(summary)
            log(f"job `{name}`: step summary in {os.path.join(self.work, name + '.summary.md')}")
        log(f"job `{name}`: {job.status} in {time.time() - t0:.0f} s")
        return job.status

    def main(self):
        self.workflow = yaml.safe_load(open(self.args.workflow))
        jobs = self.workflow.get("jobs") or {}
        want = self.args.jobs.split(",") if self.args.jobs else list(jobs)
        for j in want:
            if j not in jobs:
                die(f"no job `{j}` in {self.args.workflow} (jobs: {', '.join(jobs)})")
        self.work = os.path.abspath(self.args.work)
        os.makedirs(self.work, exist_ok=True)
        os.makedirs(self.artifacts, exist_ok=True)
        filters = dict(kv.split("=", 1) for kv in self.args.cell.split(",") if kv) if self.args.cell else {}
        for name in want:
            cells = matrix_cells((jobs[name].get("strategy") or {}).get("matrix"))
            pick = next((c for c in cells if all(str_of(lookup(c, k)) == v for k, v in filters.items() if lookup(c, k) is not None)), None)
            if pick is None:
                die(f"job `{name}`: no matrix cell matches --cell {self.args.cell}")
            if len(cells) > 1:
                log(f"job `{name}`: its matrix of {len(cells)} cells cut to {json.dumps(pick)}")
            self.cell[name] = pick
        tar = base_root()
        for name in want:
            spec = jobs[name]
            failed = [n for n in needs_of(spec) if self.results.get(n) == "failure"]
            c = spec.get("if")
            if failed and not (isinstance(c, str) and "always()" in c):
                log(f"job `{name}`: skipped (needs {failed} failed)")
                self.results[name] = "skipped"
                continue
            self.results[name] = self.job(name, spec, tar)
        log("results: " + ", ".join(f"{n} {r}" for n, r in self.results.items()))
        return 0 if all(r == "success" for r in self.results.values()) else 1


def lookup(d, dotted):
    for p in dotted.split("."):
        d = d.get(p) if isinstance(d, dict) else None
    return d


def matrix_cells(m):
    if not m:
        return [{}]
    keys = [k for k in m if k not in ("include", "exclude")]
    cells = [dict(zip(keys, vals)) for vals in itertools.product(*(m[k] for k in keys))]
    return cells + list(m.get("include") or [])


def parse_env_file(text):
    out, lines, i = {}, text.splitlines(), 0
    while i < len(lines):
        l = lines[i]
        m = re.match(r"^([^=<]+)<<(.+)$", l)
        if m:
            k, end, val = m.group(1), m.group(2), []
            i += 1
            while i < len(lines) and lines[i] != end:
                val.append(lines[i])
                i += 1
            out[k] = "\n".join(val)
        elif "=" in l:
            k, v = l.split("=", 1)
            out[k] = v
        i += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workflow")
    ap.add_argument("--jobs", help="comma-separated jobs, in order (default: all, in file order)")
    ap.add_argument("--cell", default="", help="the matrix cell: key=value,... (dotted keys: kernel.label=debian-6.12)")
    ap.add_argument("--input", action="append", default=[], help="workflow_dispatch input NAME=VALUE")
    ap.add_argument("--env", action="append", default=[], help="override env NAME=VALUE")
    ap.add_argument("--artifacts", default="target/wfrun/artifacts", help="the upload/download-artifact stand-in folder")
    ap.add_argument("--with", dest="with_", action="append", default=[], metavar="NAME=VALUE",
                    help="override an input of this tree's action where a job uses it (a shorter duration under TCG)")
    ap.add_argument("--baseline-dir", help="the GitHub API stand-in: a folder holding a previous summary (may be empty)")
    ap.add_argument("--work", default="target/wfrun", help="where job roots and step summaries go")
    ap.add_argument("--keep-roots", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root (chroot and mounts)")
    if shutil.which("mmdebstrap") is None:
        die("mmdebstrap is missing: apt-get install mmdebstrap")
    try:
        sys.exit(Run(args).main())
    except ValueError as e:
        die(str(e))


if __name__ == "__main__":
    main()
