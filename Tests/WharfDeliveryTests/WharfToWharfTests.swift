import Foundation
import Testing
import WharfCore
import WharfSpool
import WharfStore
import WharfTestSupport

/// Wharf delivering to another Wharf served in-process: mutual TLS both ways, receipts
/// checked, and exactly one copy at the receiver even when the sender dies mid-delivery.
@Suite(.serialized) struct WharfToWharfTests {
    /// A receiver (in-process) that knows partner `sender`, and a sender home whose
    /// partner `receiver` points at it with the receiver's CA, its pin and the bundle it issued.
    static func pair() async throws -> (receiver: TestGateway, sender: WharfHomeFixture) {
        let receiver = try await TestGateway.start()
        let sender = try WharfHomeFixture()
        try await sender.succeed("init")
        try await receiver.accept(from: sender)
        return (receiver, sender)
    }

    @Test func aWharfReceiverKeepsEachFileAndItsReceiptMatches() async throws {
        let (receiver, sender) = try await Self.pair()
        let files = try (0..<3).map { try TestGatewayFiles(fixture: sender).randomFile("order-\($0).json", size: 5_000 + $0) }
        try await sender.succeed(["send", "receiver"] + files.map(\.path))
        try await sender.succeed("deliver", "--once")
        try await receiver.stop()

        let transfers = try Registry.open(at: "\(sender.home)/wharf.sqlite").transfers()
        #expect(transfers.count == 3)
        for transfer in transfers {
            #expect(transfer.state == .delivered, "\(transfer)")
            #expect(transfer.receipt?.contains(transfer.sha256) == true)
            // Signed by the receiver, verified on delivery (connections reused included),
            // kept, and valid for the receiver's own tool too.
            let signature = try #require(transfer.receiptSignature, "\(transfer)")
            let saved = try receiver.fixture.directory.write("\(transfer.id).sig", signature)
            #expect(try await receiver.fixture.succeed("receipt", "verify", saved).stdout.contains("valid: signed by Wharf's current server certificate"))
        }
        let receipts = try receiver.registry.receipts(partner: "sender")
        #expect(Set(receipts.map(\.sha256)) == Set(files.map(\.sha256)))
        #expect(Set(receipts.compactMap(\.idempotencyKey)) == Set(transfers.map(\.id)))

        // JSON output carries the receiver's receipt as an object, not as a string.
        let shown = try await sender.succeed("transfers", "show", transfers[0].id, "--json").stdout
        let object = try #require(try JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: Any])
        let receipt = try #require((object["transfer"] as? [String: Any])?["receipt"] as? [String: Any], "\(shown)")
        #expect(receipt["sha256"] as? String == transfers[0].sha256)
        let listed = try await sender.succeed("transfers", "list", "--json").stdout
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]])
        #expect(rows.allSatisfy { ($0["receipt"] as? [String: Any])?["received_at"] != nil }, "\(listed)")
    }

    /// A receiver that answers a Wharf receipt: `/forged` with a signature made by its own
    /// certificate's thumbprint but not its key, `/elsewhere` by another certificate's.
    static let forger = """
        import base64, hashlib, http.server, json, ssl, subprocess, sys
        certificate, key, other = sys.argv[1:4]
        def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        def thumbprint(path):
            der = subprocess.run(["openssl", "x509", "-in", path, "-outform", "der"], capture_output=True, check=True).stdout
            return b64(hashlib.sha256(der).digest())
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_PUT(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receipt = json.dumps({"id": "r1", "partner": "sender", "filename": "x", "received_at": "2026-12-03T10:00:00Z",
                                      "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}, sort_keys=True).encode()
                signer = certificate if self.path.startswith("/forged") else other
                header = json.dumps({"alg": "ES256", "x5t#S256": thumbprint(signer)}).encode()
                jws = b64(header) + "." + b64(receipt) + "." + b64(bytes(64))
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receipt)))
                self.send_header("Wharf-Receipt-Signature", jws)
                self.end_headers()
                self.wfile.write(receipt)
            def log_message(self, *args): pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """

    /// A TCP relay that cuts its first connection after `cut` bytes from the client (both
    /// ways at once, as a broken network does) and relays later ones whole.
    static let cuttingRelay = """
        import socket, sys, threading
        target, cut = int(sys.argv[1]), int(sys.argv[2])
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        print(listener.getsockname()[1], flush=True)
        def pipe(source, destination, limit):
            sent = 0
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    if limit is not None and sent + len(data) >= limit:
                        destination.sendall(data[:limit - sent])
                        print("cut", flush=True)
                        break
                    destination.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            for end in (source, destination):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                    end.close()
                except OSError:
                    pass
        count = 0
        while True:
            client, _ = listener.accept()
            count += 1
            server = socket.create_connection(("127.0.0.1", target))
            threading.Thread(target=pipe, args=(client, server, cut if count == 1 else None), daemon=True).start()
            threading.Thread(target=pipe, args=(server, client, None), daemon=True).start()
        """

    /// A large delivery to a Wharf that breaks resumes from what the receiver kept: the next
    /// attempt asks for the offset and sends only the rest, and one file arrives, whole.
    @Test func aBrokenLargeDeliveryResumesFromTheReceiversOffset() async throws {
        let (receiver, sender) = try await Self.pair()
        let relay = try BackgroundProcess("python3", [try sender.directory.write("relay.py", Self.cuttingRelay), "\(receiver.port)", "\(24 << 20)"])
        let port = try await relay.waitForOutput { $0.hasSuffix("\n") }.trimmingCharacters(in: .whitespacesAndNewlines)
        try await sender.succeed("partner", "update", "receiver", "--url", "https://localhost:\(port)/inbox", "--retry-initial", "0")
        let path = sender.directory.file("big.bin")
        let made = try await Command.runAsync("dd", ["if=/dev/urandom", "of=\(path)", "bs=1M", "count=48", "status=none"])
        #expect(made.status == 0)
        let size = Int64(48 << 20)
        try await sender.succeed("send", "receiver", path)
        let registry = try Registry.open(at: "\(sender.home)/wharf.sqlite")
        // The first attempt breaks; the retry is due at once, in this run or the next.
        for _ in 0..<3 where try registry.transfers().first?.state != .delivered {
            _ = try await sender.wharf("deliver", "--once")
        }
        relay.signal(SIGTERM)
        let transfer = try #require(try registry.transfers().first)
        #expect(transfer.state == .delivered, "\(transfer)")
        #expect(transfer.receiptSignature != nil)
        #expect(transfer.uploadLocation == nil, "forgotten once delivered")
        let attempts = try registry.attempts(of: transfer.id)
        #expect(attempts.count == 2, "\(attempts)")
        #expect(relay.stdout.contains("cut"))
        if attempts.count == 2 {
            #expect(attempts[0].httpStatus == nil, "the first attempt broke: \(attempts[0])")
            #expect(attempts[1].bytesSent < size - (8 << 20), "the second sent only the rest: \(attempts[1].bytesSent) of \(size)")
        }
        let receipts = try receiver.registry.receipts(partner: "sender")
        #expect(receipts.count == 1)
        #expect(receipts.first?.sha256 == transfer.sha256 && receipts.first?.size == size)
        let stored = try #require(receipts.first.map { "\(receiver.home)/spool/inbox/sender/\($0.storedName)" })
        #expect(try TestGatewayFiles.sha256(ofFile: stored) == transfer.sha256)
        #expect(Spool(root: "\(receiver.home)/spool").partialIDs().isEmpty)
        try await receiver.stop()
    }

    @Test func aReceiptWhoseSignatureDoesNotVerifyKillsTheTransferWithTheReason() async throws {
        let sender = try WharfHomeFixture()
        try await sender.succeed("init")
        let directory = sender.directory
        for name in ["server", "other"] {
            let made = try await Command.runAsync("openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost", "-keyout", directory.file("\(name).key"), "-out", directory.file("\(name).crt"),
            ])
            #expect(made.succeeded, "\(made.stderr)")
        }
        let forger = try BackgroundProcess("python3", [
            try directory.write("forger.py", Self.forger), directory.file("server.crt"), directory.file("server.key"), directory.file("other.crt"),
        ])
        let port = try await forger.waitForOutput { $0.hasSuffix("\n") }.trimmingCharacters(in: .whitespacesAndNewlines)
        for path in ["forged", "elsewhere"] {
            try await sender.succeed("partner", "add", path, "--url", "https://localhost:\(port)/\(path)", "--server-ca", directory.file("server.crt"))
            try await sender.succeed("send", path, try TestGatewayFiles(fixture: sender).randomFile("\(path).bin", size: 1_000).path)
        }
        let run = try await sender.wharf("deliver", "--once")
        #expect(run.status == 1, "both die: \(run.stdout) \(run.stderr)")
        forger.signal(SIGTERM)

        let transfers = try Registry.open(at: "\(sender.home)/wharf.sqlite").transfers()
        let reasons = Dictionary(uniqueKeysWithValues: transfers.map { ($0.partner, $0) })
        #expect(reasons["forged"]?.state == .dead && reasons["elsewhere"]?.state == .dead, "\(transfers)")
        #expect(reasons["forged"]?.lastError == "the receiver's receipt signature does not verify: the signature does not match the receipt: it was changed, or not signed by this certificate", "\(transfers)")
        #expect(reasons["elsewhere"]?.lastError == "the receiver's receipt signature does not verify: it was made with a certificate the receiver did not present", "\(transfers)")
        #expect(transfers.allSatisfy { $0.receiptSignature == nil })
    }

    @Test func aServerLoadsLibcurlWithItsFirstDeliveryAndNotBefore() async throws {
        let (receiver, sender) = try await Self.pair()
        let server = try BackgroundProcess(WharfHomeFixture.binary, ["serve", "--home", sender.home, "--listen", "127.0.0.1:0", "--admin-listen", "off"])
        _ = try await server.waitForOutput { $0.contains("Listening on") }
        // Read by cat: Foundation stops reading a /proc file at its first page.
        let mapped = { () throws -> String in try Command.run("cat", ["/proc/\(server.pid)/maps"]).stdout }
        #expect(try mapped().contains("libc.so"), "the maps were read whole")
        #expect(!(try mapped()).contains("libcurl"), "a server with nothing to deliver has libcurl mapped")

        let file = try TestGatewayFiles(fixture: sender).randomFile("first.json", size: 1_000)
        try await sender.succeed("send", "receiver", file.path)
        try await Wait.until("the file to arrive") { try receiver.registry.receipts(partner: "sender").count == 1 }
        #expect(try mapped().contains("libcurl.so.4"), "the first delivery loaded libcurl")
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0)
        try await receiver.stop()
    }

    @Test func afterSIGKILLWithFiftyDeliveriesInFlightEachFileArrivesExactlyOnce() async throws {
        let (receiver, sender) = try await Self.pair()
        let files = try (0..<50).map { try TestGatewayFiles(fixture: sender).randomFile("file-\($0).bin", size: 400_000) }
        try await sender.succeed(["send", "receiver"] + files.map(\.path))

        let first = try BackgroundProcess(WharfHomeFixture.binary, ["serve", "--home", sender.home, "--listen", "127.0.0.1:0", "--admin-listen", "off"])
        try await Wait.until("some deliveries to arrive") { try receiver.registry.receipts(partner: "sender").count >= 5 }
        first.signal(SIGKILL)
        _ = try await first.waitForExit()
        let arrivedBeforeKill = try receiver.registry.receipts(partner: "sender").count

        // Quick retries: a delivery interrupted by the kill may fail once more before it goes through.
        let second = try BackgroundProcess(WharfHomeFixture.binary, [
            "serve", "--home", sender.home, "--listen", "127.0.0.1:0", "--admin-listen", "off", "--retry-initial", "0.5", "--retry-maximum", "2",
        ])
        let registry = try Registry.open(at: "\(sender.home)/wharf.sqlite")
        do {
            try await Wait.until(timeout: .seconds(120), "every transfer to be delivered") {
                try registry.transfers(state: .delivered).count == 50
            }
        } catch {
            let pending = try registry.transfers(limit: 100).filter { $0.state != .delivered }
            Issue.record("not delivered: \(pending.map { "\($0.state) \($0.lastError ?? "")" }); sender log: \(second.stderr.suffix(2_000))")
            throw error
        }
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
        try await receiver.stop()

        #expect(arrivedBeforeKill < 50, "the kill came after everything had arrived; the test proved nothing")
        let receipts = try receiver.registry.receipts(partner: "sender", limit: 1_000)
        #expect(receipts.count == 50, "one copy each")
        #expect(Set(receipts.map(\.filename)).count == 50)
        #expect(Set(receipts.map(\.sha256)) == Set(files.map(\.sha256)))
        let stored = try FileManager.default.contentsOfDirectory(atPath: "\(receiver.home)/spool/inbox/sender")
        #expect(stored.count == 50)
    }
}

@Suite(.serialized) struct PartnerTestAgainstWharfTests {
    @Test func theTestPassesForARegisteredSenderAndFailsForAnUnknownCertificate() async throws {
        let (receiver, sender) = try await WharfToWharfTests.pair()
        let accepted = try await sender.wharf("partner", "test", "receiver")
        // The same receiver, but presenting the sender's own Wharf certificate, which the receiver does not know.
        try await sender.succeed("partner", "add", "stranger", "--url", receiver.url("/inbox"),
                                 "--server-ca", "\(receiver.home)/pki/identity-ca.crt")
        let refused = try await sender.wharf("partner", "test", "stranger")
        // A certificate from the receiver's CA whose partner was removed since: TLS passes, the request gets 403.
        try await receiver.fixture.succeed("partner", "add", "ghost")
        try await receiver.fixture.succeed("partner", "issue", "ghost")
        try await receiver.fixture.succeed("partner", "remove", "ghost")
        let ghost = "\(receiver.home)/partners/ghost"
        try await sender.succeed("partner", "add", "ghost", "--url", receiver.url("/inbox"), "--server-ca", "\(receiver.home)/pki/identity-ca.crt",
                                 "--client-cert", "\(ghost)/ghost.crt", "--client-key", "\(ghost)/ghost.key")
        let forbidden = try await sender.wharf("partner", "test", "ghost")
        try await receiver.stop()
        #expect(accepted.status == 0, "\(accepted.stdout)")
        #expect(accepted.stdout.contains("probe GET \(receiver.url("/inbox"))/: HTTP 200"), "\(accepted.stdout)")
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("[FAIL] our client certificate was refused"), "\(refused.stdout)")
        #expect(forbidden.status == 1)
        #expect(forbidden.stdout.contains("our client certificate was probably refused: GET \(receiver.url("/inbox"))/ answered HTTP 403"), "\(forbidden.stdout)")
    }
}
