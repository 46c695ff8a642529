// llmswitch admin dashboard. Talks only to the gateway's documented admin API, signed in through an
// HttpOnly session cookie; every change carries the session's CSRF token. Text from the API is only
// ever put on the page as text (textContent / text nodes), never as HTML.
"use strict";
(() => {
  const state = { csrf: null, role: null, team: null, charts: [] };
  const PAGE = 50;

  // ---------------------------------------------------------------- DOM helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (name === "text") el.textContent = String(value);
      else if (value === true) el.setAttribute(name, "");
      else el.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const byId = (id) => document.getElementById(id);

  function flash(message, isError) {
    const el = byId("flash");
    el.textContent = message || "";
    el.className = isError ? "error" : "";
  }

  function field(label, input, opts) {
    const id = input.id || "f-" + Math.random().toString(36).slice(2);
    input.id = id;
    return h("div", { class: "field" + (opts && opts.wide ? " wide" : "") }, h("label", { for: id, text: label }), input);
  }

  function table(caption, headers, rows) {
    const head = h("tr", {}, headers.map((c) => h("th", { scope: "col", class: c.num ? "num" : null, text: c.label })));
    const body = rows.length
      ? rows
      : [h("tr", {}, h("td", { colspan: headers.length, class: "muted", text: "Nothing to show." }))];
    return h("div", { class: "table-wrap" }, h("table", {}, h("caption", { text: caption }), h("thead", {}, head), h("tbody", {}, body)));
  }

  function td(value, cls) {
    return h("td", { class: cls || null }, value === null || value === undefined ? "—" : value);
  }

  const usd = (v) => {
    if (v === null || v === undefined) return "—";
    const n = Number(v);
    return "$" + (n >= 1 || n === 0 ? n.toFixed(2) : n >= 0.000001 ? n.toFixed(6) : n.toPrecision(2));
  };
  const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US"));
  const when = (v) => (v ? new Date(v).toISOString().replace("T", " ").slice(0, 19) : "—");
  const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

  function badge(text, kind) {
    return h("span", { class: "badge " + kind, text });
  }

  // ---------------------------------------------------------------- the admin API

  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", cache: "no-store", headers: {} };
    if (method !== "GET") {
      init.headers["x-csrf-token"] = state.csrf || "";
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body === undefined ? {} : body);
    }
    const resp = await fetch(path, init);
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = null;
    }
    if (!resp.ok) {
      const message = (data && data.error && data.error.message) || "HTTP " + resp.status;
      const error = new Error(message);
      error.status = resp.status;
      if (resp.status === 401) showSignIn();
      throw error;
    }
    return data;
  }

  function qs(params) {
    const out = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") out.set(k, v);
    const s = out.toString();
    return s ? "?" + s : "";
  }

  // ---------------------------------------------------------------- sign-in

  function showSignIn() {
    state.csrf = null;
    byId("nav").hidden = true;
    byId("sign-out").hidden = true;
    byId("view").hidden = true;
    byId("who").textContent = "";
    byId("sign-in").hidden = false;
    byId("sign-in-key").focus();
  }

  function signedIn(info) {
    state.csrf = info.csrf_token;
    state.role = info.role;
    state.team = info.team_id;
    byId("sign-in").hidden = true;
    byId("nav").hidden = false;
    byId("sign-out").hidden = false;
    byId("view").hidden = false;
    byId("who").textContent = info.role === "master" ? "Signed in with the master key" : "Team admin of " + info.team_id;
    if (!location.hash || location.hash === "#") location.hash = "#/keys";
    else render();
    // read the spend page's week in the background: the gateway keeps past days' totals for a minute
    api("GET", "/spend/daily" + qs({ group_by: "model", ...spendRange(7), max_age: 60 })).catch(() => null);
  }

  async function signIn(event) {
    event.preventDefault();
    const input = byId("sign-in-key");
    byId("sign-in-error").textContent = "";
    try {
      const resp = await fetch("/ui/session", {
        method: "POST",
        credentials: "same-origin",
        headers: { authorization: "Bearer " + input.value },
      });
      const data = await resp.json();
      if (!resp.ok) throw new Error((data.error && data.error.message) || "HTTP " + resp.status);
      input.value = "";
      signedIn(data);
    } catch (err) {
      byId("sign-in-error").textContent = "Sign-in failed: " + err.message;
    }
  }

  async function signOut() {
    try {
      await api("POST", "/ui/logout");
    } finally {
      location.hash = "";
      showSignIn();
    }
  }

  // ---------------------------------------------------------------- pages

  const pages = { keys: keysPage, users: usersPage, teams: teamsPage, spend: spendPage, logs: logsPage, health: healthPage };

  async function render() {
    if (!state.csrf) return;
    const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || "keys";
    const page = pages[name] || keysPage;
    for (const a of document.querySelectorAll("#nav a")) {
      if (a.getAttribute("href") === "#/" + name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    for (const chart of state.charts) chart.destroy();
    state.charts = [];
    const view = byId("view");
    view.replaceChildren(h("p", { class: "muted", text: "Loading…" }));
    flash("");
    try {
      await page(view);
    } catch (err) {
      if (err.status !== 401) view.replaceChildren(h("p", { class: "error", role: "alert", text: err.message }));
    }
  }

  // keys ------------------------------------------------------------

  async function keysPage(view, offset, text) {
    const page = Math.floor((offset || 0) / PAGE) + 1;
    const data = await api("GET", "/key/list" + qs({ return_full_object: "true", size: PAGE, page, search: text }));
    const search = h("input", { type: "search", id: "key-search", placeholder: "alias, user, team or model", value: text || "" });
    const formSlot = h("div");
    const rows = data.keys.map((k) => keyRow(k, formSlot));
    const body = table((text ? "Keys matching “" + text + "” (page " : "Keys (page ") + data.current_page + " of " + data.total_pages + ", " + num(data.total_count) + " in all)", [
      { label: "Alias" }, { label: "Key" }, { label: "Team" }, { label: "User" }, { label: "Spend", num: true },
      { label: "Budget", num: true }, { label: "Models" }, { label: "Expires" }, { label: "Status" }, { label: "Actions" },
    ], rows);
    let typing = null;
    search.addEventListener("input", () => {
      clearTimeout(typing);  // search every key on the gateway once typing pauses
      typing = setTimeout(() => keysPage(view, 0, search.value).then(() => {
        const box = byId("key-search");
        box.focus();
        box.setSelectionRange(box.value.length, box.value.length);
      }, (e) => flash(e.message, true)), 300);
    });
    view.replaceChildren(
      h("h1", { text: "Keys" }),
      h("div", { class: "toolbar" },
        field("Search keys", search),
        h("button", { type: "button", onclick: () => keyForm(formSlot, null) }, "Create key")),
      formSlot,
      body,
      pager(data.current_page, data.total_pages, (p) => keysPage(view, (p - 1) * PAGE, text)),
    );
  }

  function keyRow(k, formSlot) {
    const alias = k.key_alias || k.key_name || k.token.slice(0, 12);
    const status = k.blocked ? badge("Blocked", "bad") : badge("Active", "ok");
    const row = h("tr", {},
      td(k.key_alias), td(h("code", { text: k.key_name || "" })), td(k.team_id), td(k.user_id),
      td(usd(k.spend), "num"), td(k.max_budget === null ? "—" : usd(k.max_budget), "num"),
      td((k.models || []).join(", ") || "all", "wrap"), td(k.expires ? when(k.expires) : "never"), td(status),
      h("td", {}, h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary", "aria-label": "Edit " + alias, onclick: () => keyForm(formSlot, k) }, "Edit"),
        h("button", { type: "button", class: "secondary", "aria-label": (k.blocked ? "Unblock " : "Block ") + alias,
          onclick: () => change("/key/update", { key: k.token, blocked: !k.blocked }, (k.blocked ? "Unblocked " : "Blocked ") + alias) },
          k.blocked ? "Unblock" : "Block"),
        h("button", { type: "button", class: "secondary", "aria-label": "Regenerate " + alias, onclick: () => regenerate(k, formSlot) }, "Regenerate"),
        h("button", { type: "button", class: "danger", "aria-label": "Delete " + alias,
          onclick: () => confirm("Delete key " + alias + "?") && change("/key/delete", { keys: [k.token] }, "Deleted " + alias) }, "Delete"))));
    return row;
  }

  async function change(path, body, done) {
    try {
      await api("POST", path, body);
      await render();
      flash(done);
    } catch (err) {
      flash(err.message, true);
    }
  }

  function showSecret(slot, title, key) {
    slot.replaceChildren(h("div", { class: "card secret", role: "status" },
      h("h2", { text: title }),
      h("p", { text: "Copy it now: the gateway keeps only its hash and will not show it again." }),
      h("code", { id: "new-key", text: key }),
      h("button", { type: "button", class: "secondary", onclick: () => slot.replaceChildren() }, "I have copied it")));
  }

  async function regenerate(k, slot) {
    const alias = k.key_alias || k.key_name;
    if (!confirm("Regenerate key " + alias + "? The old key stops working at once.")) return;
    try {
      const out = await api("POST", "/key/regenerate", { key: k.token });
      await render();
      const fresh = byId("view").querySelector("div.toolbar + div");
      showSecret(fresh || slot, "New key for " + alias, out.key);
    } catch (err) {
      flash(err.message, true);
    }
  }

  function keyForm(slot, k) {
    const editing = k !== null;
    const v = (name) => (editing && k[name] !== null && k[name] !== undefined ? String(k[name]) : "");
    const alias = h("input", { required: true, value: v("key_alias"), autocomplete: "off" });
    const models = h("input", { value: editing ? (k.models || []).join(", ") : "", placeholder: "empty: every model" });
    const budget = h("input", { type: "number", min: "0", step: "any", value: v("max_budget") });
    const duration = h("input", { value: v("budget_duration"), placeholder: "e.g. 30d" });
    const rpm = h("input", { type: "number", min: "0", step: "1", value: v("rpm_limit") });
    const tpm = h("input", { type: "number", min: "0", step: "1", value: v("tpm_limit") });
    const expires = h("input", { placeholder: editing ? "unchanged" : "e.g. 90d; empty: never" });
    const team = h("input", { value: state.role === "team_admin" ? state.team : v("team_id"), readonly: state.role === "team_admin" });
    const user = h("input", { value: v("user_id") });
    const metadata = h("textarea", {}, editing ? JSON.stringify(k.metadata || {}) : "");
    const error = h("p", { class: "error", role: "alert" });
    const form = h("form", { class: "card", "aria-label": editing ? "Edit key" : "Create key" },
      h("h2", { text: editing ? "Edit key " + (k.key_alias || k.key_name) : "Create key" }),
      h("div", { class: "grid" },
        field("Key alias", alias), field("Models (comma-separated)", models), field("Max budget (USD)", budget),
        field("Budget period", duration), field("Requests per minute", rpm), field("Tokens per minute", tpm),
        field("Expires after", expires), field("Team ID", team), field("User ID", user),
        field("Metadata (JSON)", metadata, { wide: true })),
      error,
      h("div", { class: "actions" },
        h("button", { type: "submit" }, editing ? "Save key" : "Create"),
        h("button", { type: "button", class: "secondary", onclick: () => slot.replaceChildren() }, "Cancel")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { key_alias: alias.value, models: list(models.value) };
      const numbers = [["max_budget", budget, parseFloat], ["rpm_limit", rpm, parseInt], ["tpm_limit", tpm, parseInt]];
      for (const [name, input, parse] of numbers) {
        if (input.value !== "") body[name] = parse(input.value, 10);
        else if (editing) body[name] = null;
      }
      body.budget_duration = duration.value || null;
      if (expires.value) body.duration = expires.value;
      if (team.value) body.team_id = team.value;
      else if (editing) body.team_id = null;
      if (user.value) body.user_id = user.value;
      else if (editing) body.user_id = null;
      try {
        if (metadata.value.trim()) body.metadata = JSON.parse(metadata.value);
      } catch (err) {
        error.textContent = "Metadata is not valid JSON: " + err.message;
        return;
      }
      try {
        if (editing) {
          body.key = k.token;
          await api("POST", "/key/update", body);
          await render();
          flash("Saved " + alias.value);
        } else {
          const out = await api("POST", "/key/generate", body);
          await render();
          const slotNow = byId("view").querySelector("div.toolbar + div");
          showSecret(slotNow || slot, "New key " + alias.value, out.key);
        }
      } catch (err) {
        error.textContent = err.message;
      }
    });
    slot.replaceChildren(form);
    alias.focus();
  }

  function pager(page, pages, go) {
    return h("div", { class: "pager" },
      h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => go(page - 1) }, "Previous page"),
      h("span", { text: "Page " + page + " of " + pages }),
      h("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => go(page + 1) }, "Next page"));
  }

  // users -----------------------------------------------------------

  async function usersPage(view, page) {
    page = page || 1;
    const data = await api("GET", "/user/list" + qs({ page, page_size: 100 }));
    const master = state.role === "master";
    const rows = data.users.map((u) => h("tr", {},
      td(u.user_id), td(u.user_alias), td(usd(u.spend), "num"), td(u.max_budget === null ? "—" : usd(u.max_budget), "num"),
      td(u.budget_duration), td(num(u.key_count), "num"), td(u.blocked ? badge("Blocked", "bad") : badge("Active", "ok")),
      h("td", {}, master ? h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary", "aria-label": "Edit " + u.user_id, onclick: () => subjectForm(slot, "user", u) }, "Edit"),
        h("button", { type: "button", class: "secondary", "aria-label": (u.blocked ? "Unblock " : "Block ") + u.user_id,
          onclick: () => change("/user/update", { user_id: u.user_id, blocked: !u.blocked }, "Updated " + u.user_id) }, u.blocked ? "Unblock" : "Block"),
        h("button", { type: "button", class: "danger", "aria-label": "Delete " + u.user_id,
          onclick: () => confirm("Delete user " + u.user_id + " and its keys?") && change("/user/delete", { user_ids: [u.user_id] }, "Deleted " + u.user_id) }, "Delete")) : "—")));
    const slot = h("div");
    view.replaceChildren(
      h("h1", { text: "Users" }),
      master ? h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => subjectForm(slot, "user") }, "Create user")) : "",
      slot,
      table("Users (" + num(data.total) + ")", [
        { label: "User ID" }, { label: "Alias" }, { label: "Spend", num: true }, { label: "Budget", num: true },
        { label: "Budget period" }, { label: "Keys", num: true }, { label: "Status" }, { label: "Actions" },
      ], rows),
      pager(data.page, Math.max(1, data.total_pages), (p) => usersPage(view, p)),
    );
  }

  function subjectForm(slot, kind, current) {
    const editing = Boolean(current);
    const v = (name) => (editing && current[name] !== null && current[name] !== undefined ? String(current[name]) : "");
    const id = h("input", { required: kind === "user", autocomplete: "off", value: v(kind + "_id"), readonly: editing });
    const alias = h("input", { required: kind === "team", autocomplete: "off", value: v(kind + "_alias") });
    const budget = h("input", { type: "number", min: "0", step: "any", value: v("max_budget") });
    const duration = h("input", { placeholder: "e.g. 30d", value: v("budget_duration") });
    const members = h("input", {
      placeholder: "ana:admin, bob",
      value: editing ? (current.members_with_roles || []).map((m) => m.user_id + (m.role === "admin" ? ":admin" : "")).join(", ") : "",
    });
    const error = h("p", { class: "error", role: "alert" });
    const fields = [
      field(kind === "user" ? "User ID" : "Team ID (empty: generated)", id),
      field(kind === "user" ? "User alias" : "Team name", alias),
      field("Max budget (USD)", budget), field("Budget period", duration),
    ];
    if (kind === "team") fields.push(field("Members (user or user:admin, comma-separated)", members, { wide: true }));
    const title = (editing ? "Edit " : "Create ") + kind;
    const form = h("form", { class: "card", "aria-label": title },
      h("h2", { text: editing ? title + " " + (current[kind + "_alias"] || current[kind + "_id"]) : title }),
      h("div", { class: "grid" }, fields), error,
      h("div", { class: "actions" }, h("button", { type: "submit" }, editing ? "Save " + kind : "Create"),
        h("button", { type: "button", class: "secondary", onclick: () => slot.replaceChildren() }, "Cancel")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      if (id.value) body[kind + "_id"] = id.value;
      if (alias.value) body[kind + "_alias"] = alias.value;
      if (budget.value) body.max_budget = parseFloat(budget.value);
      else if (editing) body.max_budget = null;
      if (duration.value) body.budget_duration = duration.value;
      else if (editing) body.budget_duration = null;
      if (kind === "user" && !editing) body.auto_create_key = false;
      if (kind === "team" && (members.value || editing)) {
        body.members_with_roles = list(members.value).map((m) => {
          const [user_id, role] = m.split(":");
          return { user_id: user_id.trim(), role: (role || "user").trim() };
        });
      }
      try {
        await api("POST", "/" + kind + (editing ? "/update" : "/new"), body);
        await render();
        flash((editing ? "Saved " : "Created ") + kind + " " + (alias.value || id.value));
      } catch (err) {
        error.textContent = err.message;
      }
    });
    slot.replaceChildren(form);
  }

  // teams -----------------------------------------------------------

  async function teamsPage(view) {
    const teams = await api("GET", "/team/list?include_keys=false");
    const master = state.role === "master";
    const rows = teams.map((t) => h("tr", {},
      td(t.team_id), td(t.team_alias),
      td((t.members_with_roles || []).map((m) => m.user_id + (m.role === "admin" ? " (admin)" : "")).join(", ") || "—", "wrap"),
      td(usd(t.spend), "num"), td(t.max_budget === null ? "—" : usd(t.max_budget), "num"), td(t.budget_duration),
      td(num(t.key_count), "num"), td(t.blocked ? badge("Blocked", "bad") : badge("Active", "ok")),
      h("td", {}, master ? h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary", "aria-label": "Edit " + (t.team_alias || t.team_id), onclick: () => subjectForm(slot, "team", t) }, "Edit"),
        h("button", { type: "button", class: "secondary", "aria-label": (t.blocked ? "Unblock " : "Block ") + (t.team_alias || t.team_id),
          onclick: () => change("/team/update", { team_id: t.team_id, blocked: !t.blocked }, "Updated " + t.team_id) }, t.blocked ? "Unblock" : "Block"),
        h("button", { type: "button", class: "danger", "aria-label": "Delete " + (t.team_alias || t.team_id),
          onclick: () => confirm("Delete team " + t.team_id + " and its keys?") && change("/team/delete", { team_ids: [t.team_id] }, "Deleted " + t.team_id) }, "Delete")) : "—")));
    const slot = h("div");
    view.replaceChildren(
      h("h1", { text: "Teams" }),
      master ? h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => subjectForm(slot, "team") }, "Create team")) : "",
      slot,
      table("Teams (" + teams.length + ")", [
        { label: "Team ID" }, { label: "Name" }, { label: "Members" }, { label: "Spend", num: true }, { label: "Budget", num: true },
        { label: "Budget period" }, { label: "Keys", num: true }, { label: "Status" }, { label: "Actions" },
      ], rows),
    );
  }

  // spend -----------------------------------------------------------

  function isoDay(date) {
    return date.toISOString().slice(0, 10);
  }

  function spendRange(days) {
    const end = new Date();
    const start = new Date(end.getTime() - (days - 1) * 86400000);
    return { start_date: isoDay(start), end_date: isoDay(end) };
  }

  async function spendPage(view, days) {
    days = days || 7;
    const range = spendRange(days);
    const [byModel, top, budgets] = await Promise.all([
      api("GET", "/spend/daily" + qs({ group_by: "model", ...range, max_age: 60 })),
      api("GET", "/spend/top" + qs({ group_by: "key", limit: 10 })),
      api("GET", "/spend/budgets" + qs({ threshold: "0.8" })),
    ]);
    const daysList = [];
    for (let t = new Date(range.start_date + "T00:00:00Z").getTime(); isoDay(new Date(t)) <= range.end_date; t += 86400000) daysList.push(isoDay(new Date(t)));
    const perDay = new Map(daysList.map((d) => [d, { cost: 0, tokens: 0, requests: 0, saved: 0, hits: 0 }]));
    const perModel = new Map();
    for (const r of byModel.days) {
      const d = perDay.get(r.day);
      if (d) {
        d.cost += r.spend; d.tokens += r.prompt_tokens + r.completion_tokens; d.requests += r.requests;
        d.saved += r.cache_saved_cost || 0; d.hits += r.cache_hits || 0;
      }
      const m = perModel.get(r.model) || { requests: 0, tokens: 0, cost: 0, hits: 0 };
      m.requests += r.requests; m.tokens += r.prompt_tokens + r.completion_tokens; m.cost += r.spend; m.hits += r.cache_hits || 0;
      perModel.set(r.model, m);
    }
    const totals = [...perDay.values()].reduce((a, d) => ({
      cost: a.cost + d.cost, tokens: a.tokens + d.tokens, requests: a.requests + d.requests, saved: a.saved + d.saved, hits: a.hits + d.hits,
    }), { cost: 0, tokens: 0, requests: 0, saved: 0, hits: 0 });

    const select = h("select", { id: "spend-range" },
      [7, 30, 90].map((n) => h("option", { value: n, selected: n === days }, "Last " + n + " days")));
    select.addEventListener("change", () => spendPage(view, parseInt(select.value, 10)).catch((e) => flash(e.message, true)));
    const charts = h("div", { class: "charts" });
    const csv = h("button", { type: "button", class: "secondary", onclick: () => exportCsv(byModel.days, range) }, "Export CSV");
    const refresh = h("button", { type: "button", class: "secondary", onclick: () => spendPage(view, days).catch((e) => flash(e.message, true)) }, "Refresh");
    const hitRate = totals.requests ? ((100 * totals.hits) / totals.requests).toFixed(1) + "%" : "—";
    view.replaceChildren(
      h("h1", { text: "Spend and usage" }),
      h("div", { class: "toolbar" }, field("Range", select), refresh, csv),
      h("div", { class: "totals", "aria-label": "Totals for the range" },
        h("div", {}, "Cost", h("strong", { id: "total-cost", text: usd(totals.cost) })),
        h("div", {}, "Requests", h("strong", { id: "total-requests", text: num(totals.requests) })),
        h("div", {}, "Tokens", h("strong", { text: num(totals.tokens) })),
        h("div", {}, "Cache hit rate", h("strong", { text: hitRate })),
        h("div", {}, "Saved by the cache", h("strong", { text: usd(totals.saved) }))),
      charts,
      h("h2", { text: "Top spenders" }),
      table("Keys with the highest spend (current budget period, or all time)", [{ label: "Key" }, { label: "Spend", num: true }, { label: "Budget", num: true }],
        top.data.filter((r) => r.spend > 0).map((r) => h("tr", {}, td(r.name), td(usd(r.spend), "num"), td(r.max_budget === null ? "—" : usd(r.max_budget), "num")))),
      h("h2", { text: "By model" }),
      table("Spend by model in the range", [{ label: "Model" }, { label: "Requests", num: true }, { label: "Tokens", num: true }, { label: "Cache hits", num: true }, { label: "Spend", num: true }],
        [...perModel.entries()].sort((a, b) => b[1].cost - a[1].cost).map(([m, t]) => h("tr", {}, td(m), td(num(t.requests), "num"), td(num(t.tokens), "num"), td(num(t.hits), "num"), td(usd(t.cost), "num")))),
      h("h2", { text: "Near their budget" }),
      table("Keys, users and teams at 80% of their budget or more", [{ label: "Kind" }, { label: "Name" }, { label: "Spend", num: true }, { label: "Budget", num: true }, { label: "Used", num: true }],
        budgets.data.map((b) => h("tr", {}, td(b.kind), td(b.name), td(usd(b.spend), "num"), td(usd(b.max_budget), "num"),
          td(badge(Math.round(b.used * 100) + "%", b.used >= 1 ? "bad" : "warn"), "num")))),
    );
    const xs = daysList.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
    const series = [
      ["Cost (USD)", (d) => d.cost, "#0b57d0"],
      ["Tokens", (d) => d.tokens, "#7c3aed"],
      ["Requests", (d) => d.requests, "#146c2e"],
      ["Saved by the cache (USD)", (d) => d.saved, "#b45309"],
    ];
    for (const [label, pick, color] of series) {
      const holder = h("div");
      const ys = daysList.map((d) => pick(perDay.get(d)));
      const summary = label + " per day, " + range.start_date + " to " + range.end_date + ": total " + ys.reduce((a, b) => a + b, 0).toLocaleString("en-US");
      charts.append(h("figure", { role: "img", "aria-label": summary, class: "chart" }, h("figcaption", { text: label + " per day" }), holder));
      if (window.uPlot) {
        const width = Math.max(320, Math.min(640, holder.clientWidth || 560));
        state.charts.push(new window.uPlot({
          width, height: 200, legend: { show: false },
          series: [{}, { label, stroke: color, fill: color + "22", width: 2 }],
          axes: [{}, { size: 96, values: (u, ticks) => ticks.map((t) => (label.includes("USD") ? usdTick(t) : num(t))) }],
        }, [xs, ys], holder));
      }
    }
  }

  function usdTick(value) {
    if (value === 0) return "$0";
    const abs = Math.abs(value);
    return "$" + (abs >= 0.01 ? value.toFixed(2) : abs >= 1e-6 ? value.toFixed(7).replace(/0+$/, "") : value.toExponential(1));
  }

  function csvCell(value) {
    const s = value === null || value === undefined ? "" : String(value);
    // quoted, and a leading formula character neutralised for spreadsheets
    return '"' + (/^[=+\-@]/.test(s) ? "'" + s : s).replace(/"/g, '""') + '"';
  }

  function exportCsv(rows, range) {
    const header = ["day", "model", "requests", "prompt_tokens", "completion_tokens", "spend", "cache_hits", "cache_saved_cost"];
    const lines = [header.join(",")].concat(rows.map((r) => header.map((c) => csvCell(r[c])).join(",")));
    const url = URL.createObjectURL(new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" }));
    const a = h("a", { href: url, download: "llmswitch-spend-" + range.start_date + "-to-" + range.end_date + ".csv" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // logs ------------------------------------------------------------

  async function logsPage(view, filters, offset) {
    filters = filters || {};
    offset = offset || 0;
    const rows = await api("GET", "/spend/logs" + qs({ ...filters, limit: PAGE + 1, offset }));
    const more = rows.length > PAGE;
    const shown = rows.slice(0, PAGE);
    const inputs = {
      api_key: h("input", { value: filters.api_key || "", placeholder: "key or its hash", autocomplete: "off" }),
      model: h("input", { value: filters.model || "" }),
      status: h("input", { type: "number", value: filters.status || "", placeholder: "e.g. 429" }),
      start_date: h("input", { type: "date", value: filters.start_date || "" }),
      end_date: h("input", { type: "date", value: filters.end_date || "" }),
    };
    const form = h("form", { class: "toolbar", "aria-label": "Filter request logs" },
      field("Key", inputs.api_key), field("Model", inputs.model), field("Status", inputs.status),
      field("From", inputs.start_date), field("To", inputs.end_date), h("button", { type: "submit" }, "Apply filters"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const next = {};
      for (const [name, input] of Object.entries(inputs)) if (input.value) next[name] = input.value;
      logsPage(view, next, 0).catch((e) => flash(e.message, true));
    });
    const go = (o) => logsPage(view, filters, o).catch((e) => flash(e.message, true));
    view.replaceChildren(
      h("h1", { text: "Request logs" }),
      form,
      table("Requests, newest first", [
        { label: "Time (UTC)" }, { label: "Key" }, { label: "Team" }, { label: "Model" }, { label: "Deployment" }, { label: "Status" },
        { label: "Tokens in / out", num: true }, { label: "Cost", num: true }, { label: "Latency", num: true }, { label: "Cache" }, { label: "Request ID" },
      ], shown.map((r) => h("tr", {},
        td(when(r.startTime)), td(r.key_alias || (r.api_key ? r.api_key.slice(0, 12) : null)), td(r.team_id), td(r.model_group),
        td(r.model_id ? r.model_id + " (" + (r.custom_llm_provider || "?") + ")" : null, "wrap"),
        td(r.status >= 400 ? badge(r.status + (r.error_class ? " " + r.error_class : ""), "bad") : badge(String(r.status), "ok")),
        td(num(r.prompt_tokens) + " / " + num(r.completion_tokens), "num"), td(usd(r.spend), "num"),
        td(r.latency_ms === null ? "—" : Math.round(r.latency_ms) + " ms", "num"), td(r.cache_hit ? "hit" : ""), td(h("code", { text: r.request_id }))))),
      h("div", { class: "pager" },
        h("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE)) }, "Newer"),
        h("span", { text: "Rows " + (shown.length ? offset + 1 : 0) + "–" + (offset + shown.length) }),
        h("button", { type: "button", class: "secondary", disabled: !more, onclick: () => go(offset + PAGE) }, "Older")),
    );
  }

  // health ----------------------------------------------------------

  async function healthPage(view) {
    const [health, groups] = await Promise.all([api("GET", "/health"), api("GET", "/model_group/info").catch(() => null)]);
    const rows = (health.deployments || []).map((d) => {
      const calls = (d.successes || 0) + (d.failures || 0);
      const rate = calls ? ((100 * (d.failures || 0)) / calls).toFixed(1) + "%" : "—";
      const kind = d.state === "closed" ? "ok" : d.state === "open" ? "bad" : "warn";
      return h("tr", {},
        td(d.model_name), td(d.id, "wrap"), td((d.provider || "") + "/" + (d.model || "")),
        td(d.state ? badge(d.state, kind) : "—"), td(d.latency_ms === null || d.latency_ms === undefined ? "—" : d.latency_ms + " ms", "num"),
        td(rate, "num"), td(num(d.in_flight), "num"),
        td(d.last_error ? d.last_error + (d.last_error_age_s !== null ? " (" + Math.round(d.last_error_age_s) + " s ago)" : "") : "—", "wrap"));
    });
    const parts = [
      h("h1", { text: "Health" }),
      h("p", {}, "Gateway: ", badge(health.status, health.status === "healthy" ? "ok" : "warn"), " up " + Math.round(health.uptime_s) + " s"),
      table("Deployments", [
        { label: "Model group" }, { label: "Deployment" }, { label: "Provider / model" }, { label: "Breaker" },
        { label: "Latency", num: true }, { label: "Error rate", num: true }, { label: "In flight", num: true }, { label: "Last error" },
      ], rows),
    ];
    if (groups) {
      parts.push(h("h2", { text: "Model groups and fallbacks" }), table("Model groups", [
        { label: "Model group" }, { label: "Deployments", num: true }, { label: "Fallbacks" }, { label: "Context-window fallbacks" }, { label: "Content-policy fallbacks" },
      ], groups.data.map((g) => h("tr", {}, td(g.model_group), td(num(g.deployments), "num"),
        td((g.fallbacks || []).join(" → ") || "—"), td((g.context_window_fallbacks || []).join(" → ") || "—"),
        td((g.content_policy_fallbacks || []).join(" → ") || "—")))));
    }
    if (health.spend_journal) {
      const j = health.spend_journal;
      parts.push(h("h2", { text: "Spend journal" }), h("p", {}, j.failing ? badge("failing", "bad") : badge("writing", "ok"),
        " held " + num(j.held) + ", dropped " + num(j.dropped) + ", write errors " + num(j.write_errors)));
    }
    view.replaceChildren(...parts);
  }

  // ---------------------------------------------------------------- start

  async function start() {
    byId("sign-in-form").addEventListener("submit", signIn);
    byId("sign-out").addEventListener("click", signOut);
    window.addEventListener("hashchange", render);
    try {
      const resp = await fetch("/ui/session", { credentials: "same-origin", cache: "no-store" });
      if (resp.ok) {
        signedIn(await resp.json());
        return;
      }
    } catch (err) {
      // not signed in
    }
    showSignIn();
  }

  start();
})();
