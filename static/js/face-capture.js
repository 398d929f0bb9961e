/* Webcam capture for the face pages (enrollment and the face sign-in step).
 *
 * No framework. The page holds a <section id="capture" data-...> element with:
 *   data-purpose="enroll|verify", data-start-url, data-frames-needed, data-max-width, data-max-height,
 *   data-interval-ms, optionally data-wait-seconds (a waiting time already known when the page loaded) and
 *   data-signin-url (where to sign in again once the session has ended: the application's request restarted),
 *   data-signin-request (the application's request the page was shown for, empty when it named none; always
 *   sent with finish: a face check passed here resumes that request, or none, never one another tab started).
 * Flow: #start-camera → getUserMedia and, at the same time, POST start-url (new capture session: id +
 * nonce) → frames scaled down to data-max-width x data-max-height (what the server's checks need) → one JPEG frame
 * at a time (raw body, X-Capture-Nonce, X-CSRFToken, X-Frame-Time) showing the server's guidance in
 * #guidance and progress in #progress → when enough good frames: POST finish → follow "redirect".
 * Liveness (the start answer has "liveness": true): the instruction is shown in #challenge (aria-live),
 * the camera is filmed every interval_ms for up to window_ms (capture time in X-Frame-Time) and the frames
 * are uploaded one after the other as the server keeps up, until a frame answer says "done" (or the
 * window is over and every filmed frame was sent); then POST finish. The moves are not in the start
 * answer: the server names them (liveness.challenge, .moves, .instruction, .cue_ms) in its answer to the
 * first frame with a face. The instruction (the cue) appears cue_ms after the first frame is
 * filmed (or at once, if the moves came later; a move before it fails), with #move-demo:
 * one animated head per requested move, mirrored like the preview, kept visible after a failure. The
 * frame answers' "liveness" (moves_done of moves_needed, a hint such as "turn a little further") drive
 * #progress and #guidance; the progress resets after a failure and with each new attempt.
 * Limits: a 429 "face_busy" (the server's face workers are all busy) is retried after its retry_after
 * (the same frame, a few times); any other 429 (too many captures or pictures, waiting time after
 * failures) stops the capture with the server's message and a countdown on the Try again button.
 */
(function () {
  "use strict";

  var root = document.getElementById("capture");
  if (!root) { return; }

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var startUrl = root.getAttribute("data-start-url");
  var signinUrl = root.getAttribute("data-signin-url") || "/login";
  var signinRequest = root.getAttribute("data-signin-request") || "";
  var maxW = parseInt(root.getAttribute("data-max-width"), 10) || 640;
  var maxH = parseInt(root.getAttribute("data-max-height"), 10) || 480;
  var intervalMs = parseInt(root.getAttribute("data-interval-ms"), 10) || 200;
  var needed = parseInt(root.getAttribute("data-frames-needed"), 10) || 5;

  var startBtn = document.getElementById("start-camera");
  var retryBtn = document.getElementById("retry");
  var video = document.getElementById("video");
  var guidance = document.getElementById("guidance");
  var progress = document.getElementById("progress");
  var result = document.getElementById("result");
  var challengeEl = document.getElementById("challenge");
  var demo = document.getElementById("move-demo");
  var progressLabel = document.getElementById("progress-label");
  var stage = document.getElementById("stage");
  var canvas = document.createElement("canvas");

  var stream = null;
  var running = false;
  var capture = null;
  var busyTries = 0;  // consecutive "face_busy" answers in sendLoop

  function setText(el, text, kind) {
    if (!el) { return; }
    el.textContent = text || "";
    el.classList.remove("is-error", "is-ok");
    if (kind) { el.classList.add(kind === "error" ? "is-error" : "is-ok"); }
  }

  function show(el, visible) { if (el) { el.hidden = !visible; } }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  var BUSY_RETRIES = 5;
  var FRESH_POLL_MS = 20;  // how often the filming loop looks for the next camera frame when none is new yet
  function isBusy(r) { return r && r.status === 429 && r.body && r.body.error === "face_busy"; }
  function busyDelayMs(r) { return Math.min(5, Math.max(1, parseInt(r.body.retry_after, 10) || 1)) * 1000; }

  function stopCamera() {
    if (stream) {
      stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null;
    }
    if (video) { video.srcObject = null; }
    if (stage) { stage.classList.remove("is-live"); }
  }

  function cameraErrorMessage(err) {
    var name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      return "Camera permission was refused. Allow this site to use the camera (usually the camera icon in " +
        "the address bar), then press Try again.";
    }
    if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
      return "No camera was found. Connect a camera, or use another device with a camera, then press Try again.";
    }
    if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
      return "The camera is busy or could not be started. Close other apps that use the camera, then press Try again.";
    }
    return "The camera could not be started (" + (name || "unknown error") + ").";
  }

  function showChallenge(text) {
    if (!challengeEl) { return; }
    challengeEl.textContent = text || "";
    show(challengeEl, !!text);
  }

  // Per move: its words and arrow. A turn's arrow points the way the head turns in the mirrored preview
  // (the person's left is the screen's left); a tilt's points up (chin up) or down (chin down), the same
  // in a mirror.
  var SIDES = { turn_left: ["your left", "\u2190"], turn_right: ["your right", "\u2192"],
                look_up: ["chin up", "\u2191"], look_down: ["chin down", "\u2193"] };

  // One step per requested move: head icon + arrow + words. Moves not shown yet (total > moves: at
  // sign-in the server names the next move once the shown ones are done) get a still "next" step.
  function buildDemo(moves, total) {
    if (!demo) { return; }
    demo.textContent = "";
    moves = (moves || []).slice();
    while (total && moves.length < total) { moves.push("next"); }
    moves.forEach(function (m, i) {
      var side = m === "next" ? ["next move", "?"] : (SIDES[m] || [m, ""]);
      var li = document.createElement("li");
      li.className = "move-step";
      li.setAttribute("data-move", m);
      var head = document.createElement("span");
      head.className = "move-head";
      var nose = document.createElement("span");
      nose.className = "move-nose";
      head.appendChild(nose);
      var arrow = document.createElement("span");
      arrow.className = "move-arrow";
      arrow.textContent = side[1];
      var label = document.createElement("span");
      label.className = "move-label";
      label.textContent = (i + 1) + ". " + side[0];
      li.appendChild(head);
      li.appendChild(arrow);
      li.appendChild(label);
      demo.appendChild(li);
    });
    markDemo(0);
  }

  function markDemo(done) {
    if (!demo) { return; }
    Array.prototype.forEach.call(demo.children, function (li, i) {
      li.classList.toggle("is-done", i < done);
      li.classList.toggle("is-current", i === done);
    });
  }

  function resetChallenge() {
    cueShown = false;
    showChallenge("");
    if (demo) { demo.textContent = ""; show(demo, false); }
  }

  function resetProgress() {
    progress.value = 0;
    var unit = progressLabel && progressLabel.textContent === "Moves done" ? " moves" : " pictures";
    progress.setAttribute("aria-valuetext", "0 of " + progress.max + unit);
    markDemo(0);
  }

  function fail(message, opts) {
    running = false;
    stopCamera();
    // the instruction and its illustration stay: the person sees what was asked; the progress starts
    // again from nothing (a failed attempt counts no move)
    resetProgress();
    setText(result, message, "error");
    setText(guidance, "");
    opts = opts || {};
    if (opts.redirect) {
      var link = document.createElement("a");
      link.href = opts.redirect;
      link.textContent = opts.linkText || "Continue";
      link.className = "button secondary";
      result.appendChild(document.createTextNode(" "));
      result.appendChild(link);
    }
    if (opts.noRetry) {
      show(retryBtn, false);
    } else {
      show(retryBtn, true);
      if (opts.retryAfter) { countdown(opts.retryAfter); } else { retryBtn.disabled = false; retryBtn.focus(); }
    }
    if (startBtn) { show(startBtn, false); }
  }

  function countdown(seconds) {
    retryBtn.disabled = true;
    var left = seconds;
    var label = retryBtn.getAttribute("data-label") || retryBtn.textContent;
    retryBtn.setAttribute("data-label", label);
    function tick() {
      if (left <= 0) {
        retryBtn.disabled = false;
        retryBtn.textContent = label;
        return;
      }
      retryBtn.textContent = label + " (" + left + " s)";
      left -= 1;
      setTimeout(tick, 1000);
    }
    tick();
  }

  function api(url, options) {
    options = options || {};
    var headers = options.headers || {};
    headers["X-CSRFToken"] = csrf;
    headers["Accept"] = "application/json";
    options.headers = headers;
    options.credentials = "same-origin";
    options.method = options.method || "POST";
    return fetch(url, options).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        return { status: resp.status, ok: resp.ok, body: body };
      });
    });
  }

  // The camera's frames as presented (requestVideoFrameCallback, where the browser has it): a frame is
  // grabbed at most once. A camera slower than the filming interval (a dim room: many webcams drop to 5
  // fps) would otherwise send the same picture twice, which the server rightly counts as a frozen feed.
  // Counted per stream (each openCamera starts again: a browser may drop the callbacks of the previous
  // stream). Until the stream's first callback, without the API, and while the callbacks have been silent for
  // CALLBACKS_STALLED_MS (Chrome stops them in a background tab, Firefox for a video out of view) every grab
  // is taken as a new frame, as before: the capture never waits for callbacks that do not come.
  var CALLBACKS_STALLED_MS = 1000;
  var presented = 0, grabbed = -1, lastPresented = 0, watchId = 0;
  function watchFrames() {
    presented = 0;
    grabbed = -1;
    if (!video.requestVideoFrameCallback) { return; }
    var id = ++watchId;
    var tick = function () {
      if (id !== watchId) { return; }  // an earlier stream's chain: it ends here
      presented += 1;
      lastPresented = Date.now();
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  }
  function newFrame() {
    return presented === 0 || presented !== grabbed || Date.now() - lastPresented > CALLBACKS_STALLED_MS;
  }

  function grabFrame() {
    var w = video.videoWidth, h = video.videoHeight;
    if (!w || !h || !newFrame()) { return Promise.resolve(null); }
    grabbed = presented;
    var scale = Math.min(1, maxW / w, maxH / h);
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", 0.85); });
  }

  function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return Promise.reject({ name: "Unsupported", message: "This browser cannot use a camera on this page " +
        "(a secure https:// connection and a recent browser are needed)." });
    }
    return navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } }
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      watchFrames();
      video.muted = true;
      video.setAttribute("playsinline", "");
      return video.play().catch(function () { /* autoplay policies: the frames still arrive */ });
    }).then(function () {
      return new Promise(function (resolve) {
        if (video.videoWidth) { resolve(); return; }
        video.addEventListener("loadedmetadata", function () { resolve(); }, { once: true });
      });
    });
  }

  function startCapture() {
    return api(startUrl, {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({})
    }).then(function (r) {
      if (!r.ok) { throw r; }
      capture = r.body;
      needed = capture.frames_needed || needed;
      intervalMs = capture.interval_ms || intervalMs;
      progress.value = 0;
      if (capture.liveness) {
        // progress = the challenge's moves; the moves and the instruction come later (see liveLoop)
        progress.max = capture.moves_needed || 1;
        progress.setAttribute("aria-valuetext", "0 of " + progress.max + " moves");
        if (progressLabel) { progressLabel.textContent = "Moves done"; }
        setText(guidance, "Look at the camera. The instruction appears in a moment.");
      } else {
        progress.max = needed;
        progress.setAttribute("aria-valuetext", "0 of " + needed + " pictures");
      }
    });
  }

  function showFrameAnswer(body) {
    var live = body.liveness;
    if (live && live.moves_needed) {
      progress.max = live.moves_needed;
      progress.value = Math.min(live.moves_done || 0, live.moves_needed);
      progress.setAttribute("aria-valuetext", progress.value + " of " + live.moves_needed + " moves");
      markDemo(progress.value);
      // the moves are known but their cue is not shown yet: nothing to say about them (before the moves
      // are known - no face found yet - the server's guidance, e.g. "no face found", is shown)
      if (live.before_cue && capture && capture.challenge) { return; }
      setText(guidance, body.message, live.hint === "back" || live.hint === "done" ? "ok" : null);
      return;
    }
    progress.value = Math.min(body.good_frames, needed);
    progress.setAttribute("aria-valuetext", progress.value + " of " + needed + " pictures");
    setText(guidance, body.message, body.ok ? "ok" : null);
  }

  var cueShown = false;
  function showCue() {
    if (!running || !capture || !capture.challenge) { return; }
    cueShown = true;
    showChallenge(capture.instruction || "Follow the instruction.");
    show(demo, true);
    setText(guidance, "Follow the arrows.");
  }

  // Liveness: film at a steady rate for up to window_ms, upload in order as the server keeps up.
  function liveLoop() {
    var windowMs = capture.window_ms || 4500;
    var maxFrames = capture.max_frames || 60;
    return new Promise(function (resolve, reject) {
      var queue = [], filming = true, busy = false, over = false, captured = 0, busyTries = 0, t0 = Date.now();
      var firstTs = null, shownMoves = 0;

      // The answer to the first frame with a face names the moves (at sign-in the first one; the
      // next ones come once it is done): show them at the cue, counted from the first filmed frame (at
      // once if that moment has passed, and at once for the later moves). A later first face also makes
      // the filming window longer by as much (the answers' window_ms), and so does a next move shown late
      // by a busy server: while a move is still to come, filming goes on past the window by up to
      // late_max_ms (the answer showing it may still be queued behind the frames filmed meanwhile).
      function learn(live) {
        if (!live) { return; }
        if (live.window_ms) { windowMs = live.window_ms; }
        if (live.max_frames) { maxFrames = live.max_frames; }
        var moves = live.moves || [];
        if (!live.challenge || moves.length <= shownMoves) { return; }
        var first = shownMoves === 0;
        shownMoves = moves.length;
        capture.challenge = live.challenge;
        capture.instruction = live.instruction;
        buildDemo(moves, live.moves_needed);
        if (first) {
          setTimeout(showCue, Math.max(0, (firstTs === null ? t0 : firstTs) + (live.cue_ms || 0) - Date.now()));
        } else if (cueShown) {
          showCue();
        }
      }

      function end(p) {
        if (over) { return; }
        over = true;
        filming = false;
        queue.length = 0;
        p.then(resolve, reject);
      }

      function film() {
        if (over || !filming) { return; }
        if (!running) { end(Promise.resolve()); return; }
        var now = Date.now();
        var pending = shownMoves < (capture.moves_needed || 0) ? (capture.late_max_ms || 0) : 0;
        if (now - t0 >= windowMs + pending || captured >= maxFrames) { filming = false; pump(); return; }
        // no new camera frame since the last one filmed: film the next one as soon as it comes
        if (!newFrame()) { setTimeout(film, FRESH_POLL_MS); return; }
        setTimeout(film, intervalMs);
        grabFrame().then(function (blob) {
          if (blob && !over) {
            if (firstTs === null) { firstTs = now; }
            queue.push({ blob: blob, ts: now });
            captured += 1;
            pump();
          }
        });
      }

      function pump() {
        if (over || busy) { return; }
        if (!running) { end(Promise.resolve()); return; }
        if (!queue.length) {
          if (!filming) { running = false; end(finish()); }
          return;
        }
        var item = queue.shift();
        busy = true;
        api(capture.frames_url, {
          headers: { "Content-Type": "image/jpeg", "X-Capture-Nonce": capture.nonce, "X-Frame-Time": String(item.ts) },
          body: item.blob
        }).then(function (r) {
          busy = false;
          if (over) { return; }
          if (isBusy(r) && busyTries < BUSY_RETRIES) {
            // The server is busy: send the same frame again shortly (its capture time stays the same).
            busyTries += 1;
            queue.unshift(item);
            busy = true;
            setText(guidance, r.body.message || "The server is busy. Please hold on…");
            setTimeout(function () { busy = false; pump(); }, busyDelayMs(r));
            return;
          }
          busyTries = 0;
          if (!r.ok) {
            if (r.status === 400 || r.status === 413) {
              setText(guidance, r.body.message || r.body.error_description || "That picture could not be used.");
            } else {
              end(Promise.reject(r));
              return;
            }
          } else {
            learn(r.body.liveness);
            showFrameAnswer(r.body);
            if (r.body.done) { running = false; end(finish()); return; }
          }
          pump();
        }, function (e) { busy = false; end(Promise.reject(e)); });
      }

      film();
    });
  }

  function sendLoop() {
    if (!running) { return Promise.resolve(); }
    var t0 = Date.now();
    return grabFrame().then(function (blob) {
      if (!blob) { return sleep(100).then(sendLoop); }
      return api(capture.frames_url, {
        headers: { "Content-Type": "image/jpeg", "X-Capture-Nonce": capture.nonce, "X-Frame-Time": String(Date.now()) },
        body: blob
      }).then(function (r) {
        if (!running) { return null; }
        if (isBusy(r) && busyTries < BUSY_RETRIES) {
          busyTries += 1;
          setText(guidance, r.body.message || "The server is busy. Please hold on…");
          return sleep(busyDelayMs(r)).then(sendLoop);
        }
        busyTries = 0;
        if (!r.ok) {
          if (r.status === 400 || r.status === 413) {
            // One unreadable picture: say so and keep going.
            setText(guidance, r.body.message || r.body.error_description || "That picture could not be used.");
          } else {
            throw r;
          }
        } else {
          var body = r.body;
          showFrameAnswer(body);
          if (body.done) { running = false; return finish(); }
        }
        var wait = Math.max(0, intervalMs - (Date.now() - t0));
        return sleep(wait).then(sendLoop);
      });
    });
  }

  // POST finish for ``cap``; while the server answers that another check of this account is being judged
  // (429 check_in_progress: the capture stays open), ask again a few times. Marks it closed once answered.
  function postFinish(cap, tries) {
    tries = tries || 0;
    return api(cap.finish_url, {
      headers: { "X-Capture-Nonce": cap.nonce, "Content-Type": "application/json" },
      body: JSON.stringify({ signin_request: signinRequest })
    }).then(function (r) {
      var body = r.body || {};
      if (r.status === 429 && body.error === "check_in_progress" && tries < 5) {
        return sleep(1000 * (body.retry_after || 1)).then(function () { return postFinish(cap, tries + 1); });
      }
      if (r.ok || (r.status < 500 && r.status !== 429)) { cap.closed = true; }
      return r;
    });
  }

  // A capture the page gives up on (an error, not a decision) is finished anyway, without showing the
  // answer: a sign-in capture left open once its moves were shown counts as an abandoned attempt on the server.
  function closeQuietly() {
    if (!capture || capture.closed || !capture.finish_url) { return; }
    postFinish(capture).catch(function () {});
  }

  function finish() {
    setText(guidance, "Checking…");
    return postFinish(capture).then(function (r) {
      stopCamera();
      var body = r.body || {};
      if (r.ok && body.ok) {
        resetChallenge();
        setText(result, body.message || "Done.", "ok");
        setText(guidance, "");
        show(retryBtn, false);
        if (body.redirect) { window.location.assign(body.redirect); }
        return;
      }
      if (!r.ok) { throw r; }
      if (body.locked) {
        fail(body.message, { redirect: body.redirect, linkText: "Use a recovery code", noRetry: true });
      } else if (body.redirect) {
        fail(body.message, { redirect: body.redirect, linkText: "Continue", noRetry: true });
      } else {
        fail(body.message || "Please try again.", { retryAfter: body.retry_after });
      }
    });
  }

  function handleError(err) {
    if (err && typeof err.status === "number") {
      var body = err.body || {};
      var message = body.message || body.error_description || "Something went wrong. Please try again.";
      if (body.error === "face_locked") {
        fail(message, { redirect: body.redirect, linkText: "Use a recovery code", noRetry: true });
      } else if (body.redirect) {
        fail(message, { redirect: body.redirect, linkText: "Continue" });
      } else if (err.status === 429) {
        fail(message, { retryAfter: body.retry_after });
      } else if (err.status === 401 || body.error === "csrf_failed") {
        // the session ended (expired, or signed out in another window): sign in again, back into the
        // application's request when the page was shown for one (data-signin-url)
        fail(message, { redirect: signinUrl, linkText: "Sign in again", noRetry: true });
      } else {
        fail(message);
      }
      return;
    }
    if (err && err.name === "Unsupported") { fail(err.message); return; }
    if (err && err.name) { fail(cameraErrorMessage(err)); return; }
    fail("The connection failed. Check your network and press Try again.");
  }

  function begin() {
    if (running) { return; }
    running = true;
    setText(result, "");
    setText(guidance, "Starting the camera…");
    show(retryBtn, false);
    if (startBtn) { startBtn.disabled = true; }
    progress.value = 0;  // a new attempt starts from nothing (moves or pictures)
    resetChallenge();
    // The camera opens while the server starts the capture session: the first frame (and the cue,
    // shown cue_ms after it) comes as soon as both are ready, not one after the other.
    var camera = openCamera();
    Promise.all([camera, startCapture()]).then(function () {
      if (stage) { stage.classList.add("is-live"); }
      if (!capture.liveness) { setText(guidance, "Look straight at the camera."); }
      return capture.liveness ? liveLoop() : sendLoop();
    }).catch(function (err) {
      // the camera may open after the start failed: never leave it on
      camera.then(function () { if (!running) { stopCamera(); } }, function () {});
      closeQuietly();
      handleError(err);
    }).then(function () {
      if (startBtn) { startBtn.disabled = false; }
    });
  }

  if (startBtn) { startBtn.addEventListener("click", begin); }
  if (retryBtn) {
    retryBtn.addEventListener("click", function () {
      if (startBtn) { show(startBtn, false); }
      begin();
    });
  }
  window.addEventListener("pagehide", stopCamera);

  var waitSeconds = parseInt(root.getAttribute("data-wait-seconds"), 10) || 0;
  if (waitSeconds > 0 && startBtn) {
    startBtn.disabled = true;
    var label = startBtn.textContent;
    var left = waitSeconds;
    (function tick() {
      if (left <= 0) { startBtn.disabled = false; startBtn.textContent = label; return; }
      startBtn.textContent = label + " (" + left + " s)";
      left -= 1;
      setTimeout(tick, 1000);
    })();
  }
}());
