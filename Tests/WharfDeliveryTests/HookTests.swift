import Foundation
import Testing
import WharfCore
import WharfDelivery
import WharfStore
import WharfTestSupport

/// Downstream systems told of what happens, by a command and by a local HTTP receiver, as
/// operators would wire them: `wharf hook add` on a running gateway.
@Suite(.serialized) struct HookTests {
    /// A hook command: writes what it was given (stdin, its WHARF_ variables, its words) to
    /// `{out}/{event id}-{attempt}.json`.
    static let recorder = """
        import json, os, sys
        out = sys.argv[1]
        event = json.load(sys.stdin)
        given = {"stdin": event, "argv": sys.argv[2:], "cwd": os.getcwd(),
                 "env": {k: v for k, v in os.environ.items() if k.startswith("WHARF")}}
        path = os.path.join(out, "%d-%d.json" % (event["id"], event["attempt"]))
        with open(path + ".tmp", "w") as f: json.dump(given, f)
        os.rename(path + ".tmp", path)
        """

    /// A local HTTP receiver: answers 503 to the first two posts of each event id, then 200,
    /// and appends each post (headers and body) to `{out}/posts.jsonl`. Prints its port.
    static let receiver = """
        import http.server, json, os, sys, threading
        out = sys.argv[1]
        seen = {}
        lock = threading.Lock()
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event = self.headers.get("Wharf-Event-Id")
                with lock:
                    seen[event] = seen.get(event, 0) + 1
                    count = seen[event]
                    with open(os.path.join(out, "posts.jsonl"), "a") as f:
                        f.write(json.dumps({"event": event, "type": self.headers.get("Content-Type"), "path": self.path,
                                            "body": json.loads(body)}) + "\\n")
                self.send_response(200 if count > 2 else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args): pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """

    func jsonFiles(in directory: String) throws -> [String: [String: Any]] {
        var found: [String: [String: Any]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.hasSuffix(".json") {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)"))
            found[name] = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
        return found
    }

    @Test func aCommandGetsEachEventOnStdinAndInItsEnvironmentAndNoFileNameIsEverRunAsCode() async throws {
        var delivery = DeliveryConfiguration()
        delivery.pullExpiryInterval = 0.1
        let gateway = try await TestGateway.start(delivery: delivery)
        let fixture = gateway.fixture
        let out = fixture.directory.file("events")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let script = try fixture.directory.write("record.py", Self.recorder)
        for event in ["received", "delivered", "dead"] {
            try await fixture.succeed("hook", "add", "--on", event, "--exec", "python3 \(script) \(out) --tag 'a b'")
        }
        // Only shop's deliveries: the pull partner's outbox is the simplest delivery to make.
        try await fixture.succeed("partner", "add", "shop", "--delivery", "pull")
        try await fixture.succeed("partner", "issue", "shop")
        // A sample event first, outside the queue.
        let tried = try await fixture.succeed("hook", "test", "1").stdout
        let recorded = try jsonFiles(in: out).count
        #expect(tried.contains("Hook 1 ran") && recorded == 1, "\(tried)")
        try FileManager.default.removeItem(atPath: "\(out)/0-1.json")
        #expect(try gateway.registry.hookEvents().isEmpty, "a test queues nothing")
        let listed = try await fixture.succeed("hook", "list").stdout
        #expect(listed.contains("on received  every partner  exec ") && listed.contains("'a b'"), "\(listed)")

        // Received: a file name full of shell syntax.
        let hostile = "order $(touch PWNED); `touch PWNED2` && x.xml"
        let encoded = try #require(hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
        let upload = try gateway.randomFile("upload.bin", size: 5_000)
        #expect(try await gateway.put(upload.path, as: encoded).status == 201)
        let receipt = try #require(try gateway.registry.receipts().first)

        // Delivered: shop fetches and acknowledges one file; dead: another expires unfetched.
        let fetched = try gateway.randomFile("fetched.xml", size: 100)
        try await fixture.succeed("send", "shop", fetched.path)
        let transfer = try #require(try gateway.registry.transfers(partner: "shop").first)
        #expect(try await gateway.curl(["-X", "DELETE", gateway.url("/outbox/\(transfer.id)")], as: "shop").status == 200)
        try await fixture.succeed("partner", "update", "shop", "--max-age", "1")
        let expiring = try gateway.randomFile("late.xml", size: 10)
        try await fixture.succeed("send", "shop", expiring.path)

        try await Wait.until(timeout: .seconds(60), "three hook runs: \((try? jsonFiles(in: out).keys.sorted()) ?? [])") { try jsonFiles(in: out).count == 3 }
        let runs = try jsonFiles(in: out).values.sorted { ($0["stdin"] as? [String: Any])?["id"] as? Int ?? 0 < ($1["stdin"] as? [String: Any])?["id"] as? Int ?? 0 }
        let events = runs.compactMap { $0["stdin"] as? [String: Any] }
        #expect(events.map { $0["event"] as? String } == ["received", "delivered", "dead"])
        for run in runs {
            let stdin = try #require(run["stdin"] as? [String: Any])
            let environment = try #require(run["env"] as? [String: String])
            #expect(run["argv"] as? [String] == ["--tag", "a b"], "the words as given, split without a shell")
            #expect(run["cwd"] as? String == "/")
            #expect(environment["WHARF_EVENT"] == stdin["event"] as? String)
            for (key, value) in stdin where key != "event" {
                #expect(environment["WHARF_EVENT_" + key.uppercased()] == "\(value)", "\(key)")
            }
            #expect(environment.keys.allSatisfy { $0.hasPrefix("WHARF_EVENT") }, "nothing else of Wharf's environment: \(environment.keys)")
        }
        let received = events[0]
        #expect(received["filename"] as? String == hostile && received["receipt"] as? String == receipt.id)
        #expect(received["sha256"] as? String == upload.sha256 && received["size"] as? Int == 5_000 && received["partner"] as? String == "acme")
        let path = try #require(received["path"] as? String)
        #expect(path == "\(gateway.home)/spool/inbox/acme/\(receipt.storedName)" && FileManager.default.fileExists(atPath: path))
        #expect(events[1]["transfer"] as? String == transfer.id && events[1]["filename"] as? String == "fetched.xml")
        #expect(events[2]["filename"] as? String == "late.xml" && (events[2]["reason"] as? String)?.contains("not fetched within") == true)
        for directory in ["/", out, fixture.directory.path, FileManager.default.currentDirectoryPath] {
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/PWNED") && !FileManager.default.fileExists(atPath: "\(directory)/PWNED2"))
        }
        let done = try await fixture.succeed("hook", "events", "--state", "done", "--json").stdout
        let doneEvents = try #require(try JSONSerialization.jsonObject(with: Data(done.utf8)) as? [[String: Any]])
        #expect(doneEvents.count == 3 && doneEvents.allSatisfy { $0["attempts"] as? Int == 1 }, "\(done)")
        let shops = try await fixture.succeed("hook", "events", "--partner", "shop", "--json").stdout
        let shopEvents = try #require(try JSONSerialization.jsonObject(with: Data(shops.utf8)) as? [[String: Any]])
        #expect(shopEvents.compactMap { $0["event"] as? String }.sorted() == ["dead", "delivered"], "\(shops)")
        try await gateway.stop()
    }

    @Test func aURLIsRetriedWithBackoffUntilItAnswersAndAHangingCommandHoldsUpNothing() async throws {
        let gateway = try await TestGateway.start(admin: 0)
        let fixture = gateway.fixture
        let out = fixture.directory.file("posts")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let receiver = try BackgroundProcess("python3", [try fixture.directory.write("receiver.py", Self.receiver), out])
        let port = try await receiver.waitForOutput { $0.hasSuffix("\n") }.trimmingCharacters(in: .whitespacesAndNewlines)
        try await fixture.succeed("hook", "add", "--on", "received", "--url", "http://127.0.0.1:\(port)/wharf-events", "--retry-initial", "0.2")
        try await fixture.succeed(
            "hook", "add", "--on", "received", "--partner", "acme", "--exec", "/bin/sleep 600", "--timeout", "1",
            "--max-attempts", "2", "--retry-initial", "0.1"
        )

        let files = try (1...3).map { try gateway.randomFile("f\($0).xml", size: 1_000) }
        for file in files { #expect(try await gateway.put(file.path, as: URL(fileURLWithPath: file.path).lastPathComponent).status == 201) }

        // Every post answered 503 twice, then 200: three tries each, the same event each time.
        let registry = try gateway.registry
        try await Wait.until(timeout: .seconds(60), "hook events to finish: \((try? registry.hookEvents().map { "\($0.hookID) \($0.state) \($0.attempts)" }) ?? [])") {
            try registry.hookEvents(state: .pending).isEmpty
        }
        let events = try registry.hookEvents()
        let posted = events.filter { $0.hookID == 1 }
        #expect(posted.count == 3 && posted.allSatisfy { $0.state == .done && $0.attempts == 3 }, "\(posted)")
        let lines = try String(contentsOfFile: "\(out)/posts.jsonl", encoding: .utf8).split(separator: "\n")
        let posts = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(posts.count == 9)
        for event in posted {
            let tries = posts.filter { $0["event"] as? String == String(event.id) }
            #expect(tries.count == 3)
            #expect(tries.allSatisfy { $0["type"] as? String == "application/json" && $0["path"] as? String == "/wharf-events" })
            let bodies = tries.compactMap { $0["body"] as? [String: Any] }
            #expect(bodies.map { $0["attempt"] as? Int } == [1, 2, 3])
            #expect(bodies.allSatisfy { $0["id"] as? Int == Int(event.id) && $0["receipt"] as? String == event.subject && $0["filename"] as? String == event.filename })
        }
        #expect(Set(posted.map(\.sha256)) == Set(files.map(\.sha256)))

        // The command that never ends was stopped at its timeout, twice, and given up.
        let hung = events.filter { $0.hookID == 2 }
        #expect(hung.count == 3 && hung.allSatisfy { $0.state == .failed && $0.attempts == 2 }, "\(hung)")
        #expect(hung.allSatisfy { $0.lastError == "/bin/sleep did not finish within 1 s; it was stopped; gave up after 2 attempts" }, "\(hung.map(\.lastError))")
        let failed = try await fixture.succeed("hook", "events", "--state", "failed").stdout
        #expect(failed.split(separator: "\n").count == 3 && failed.contains("failed, 2 attempts  /bin/sleep did not finish"), "\(failed)")

        // Counted for the operator, and promtool reads it.
        let adminPort = try #require(gateway.adminPort)
        let metrics = try await Command.runAsync("curl", ["-sS", "http://127.0.0.1:\(adminPort)/metrics"]).stdout
        func value(_ series: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect(value(#"wharf_hook_dispatches_total{event="received",outcome="done"}"#) == 3, "\(metrics)")
        #expect(value(#"wharf_hook_dispatches_total{event="received",outcome="retrying"}"#) == 9, "six 503s, three timeouts")
        #expect(value(#"wharf_hook_dispatches_total{event="received",outcome="failed"}"#) == 3)
        #expect(value(#"wharf_hook_events{state="failed"}"#) == 3 && value(#"wharf_hook_events{state="pending"}"#) == 0)
        let saved = try fixture.directory.write("metrics.txt", metrics)
        let checked = try await Command.runAsync("sh", ["-c", "promtool check metrics < \"$0\"", saved])
        #expect(checked.status == 0, "promtool: \(checked.stdout)\(checked.stderr)")

        // Removed, a hook gets nothing more.
        try await fixture.succeed("hook", "remove", "1")
        try await fixture.succeed("hook", "remove", "2")
        #expect(try await gateway.put(files[0].path, as: "again.xml").status == 201)
        #expect(try registry.hookEvents().isEmpty, "a removed hook's events go with it, and nothing new was queued")
        try await gateway.stop()
        receiver.signal(SIGTERM)
    }

    @Test func aFailingCommandIsRetriedAndAnEventOutlivesARestart() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let marker = fixture.directory.file("ready")
        // Fails (with a message) until the marker file exists.
        let script = try fixture.directory.write("flaky.sh", """
            #!/bin/sh
            cat > /dev/null
            if [ -e '\(marker)' ]; then exit 0; fi
            echo "downstream is not ready" >&2
            exit 3
            """)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        try await fixture.succeed("hook", "add", "--on", "received", "--exec", script, "--retry-initial", "0.2", "--max-attempts", "50")
        let tried = try await fixture.wharf("hook", "test", "1")
        #expect(tried.status == 1 && tried.stderr == "wharf: hook 1 failed: \(script) exited with status 3: downstream is not ready\n", "\(tried.stderr)")

        var gateway = try await TestGateway.start(fixture: fixture)
        let file = try gateway.randomFile("a.xml", size: 10)
        #expect(try await gateway.put(file.path, as: "a.xml").status == 201)
        let registry = try gateway.registry
        try await Wait.until(timeout: .seconds(60), "a failed run") { try registry.hookEvents().first?.attempts ?? 0 >= 1 }
        try await gateway.stop()
        let waiting = try #require(try registry.hookEvents().first)
        #expect(waiting.state == .pending && waiting.lastError == "\(script) exited with status 3: downstream is not ready", "\(waiting)")

        // Still queued after the stop; done once downstream is ready.
        try Data().write(to: URL(fileURLWithPath: marker))
        gateway = try await TestGateway.start(fixture: fixture)
        try await Wait.until(timeout: .seconds(60), "the event to be done") { try registry.hookEvents().first?.state == .done }
        #expect(try registry.hookEvents().count == 1)
        try await gateway.stop()
    }
}
