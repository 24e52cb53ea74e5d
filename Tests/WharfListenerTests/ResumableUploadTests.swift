import Crypto
import Foundation
import Testing
import WharfCore
import WharfListener
import WharfSpool
import WharfStore
import WharfTestSupport

/// Resumable uploads (draft-ietf-httpbis-resumable-upload-15) with a client that speaks
/// the draft (`scripts/resumable-upload.py`, on a raw TLS socket since Python's
/// `http.client` takes a `104` for the final response), and with curl.
@Suite struct ResumableUploadTests {
    static let client = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/resumable-upload.py").path

    /// The events the client printed, one JSON object a line.
    static func events(_ output: String) -> [[String: Any]] {
        output.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    static func event(_ name: String, in output: String) throws -> [String: Any] {
        try #require(events(output).last { $0["event"] as? String == name }, "no \(name) event in \(output)")
    }

    static func header(_ name: String, of event: [String: Any]) -> String? {
        ((event["headers"] as? [String: [String]])?[name])?.first
    }

    static func credentials(_ home: String, partner: String = "acme") -> [String] {
        let bundle = "\(home)/partners/\(partner)"
        return ["--cert", "\(bundle)/\(partner).crt", "--key", "\(bundle)/\(partner).key", "--cacert", "\(bundle)/ca.crt"]
    }

    static func run(_ arguments: [String], home: String) async throws -> String {
        let result = try await Command.runAsync("python3", [client] + arguments + credentials(home))
        return result.stdout + result.stderr
    }

    static func inbox(_ home: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "\(home)/spool/inbox/acme")) ?? []
    }

    static func sha256(_ path: String) throws -> String { try TestGatewayFiles.sha256(ofFile: path) }

    @Test func aDraftClientResumesA64MiBUploadBrokenThreeTimesAndAcrossAServerKill() async throws {
        let fixture = try TestGateway.homeWithAcme()
        let home = fixture.home
        let path = fixture.directory.file("big.bin")
        let made = try await Command.runAsync("dd", ["if=/dev/urandom", "of=\(path)", "bs=1M", "count=64", "status=none"])
        #expect(made.status == 0, "\(made.stderr)")
        let sha256 = try Self.sha256(path)
        var server = try await ServeProcessTests.Server.start(home: home)
        let url = { (path: String) in "https://localhost:\(server.port)\(path)" }

        // 1. Created with the whole file in one request, broken after 16 MiB: more than the
        // loopback's socket buffers hold, so some of it was read before the break.
        let created = try await Self.run(["create", url("/inbox/big.bin"), path, "--stop-after", "\(16 << 20)"], home: home)
        let interim = try Self.event("interim", in: created)
        #expect(interim["status"] as? Int == 104)
        let location = try #require(Self.header("location", of: interim))
        #expect(location.hasPrefix("/uploads/"))
        #expect(Self.header("upload-limit", of: interim) == "max-size=1073741824, max-age=86400")
        _ = try Self.event("stopped", in: created)

        // 2. Resumed from the offset the server reports, broken again after 20 MiB.
        let second = try await Self.run(["resume", url(location), path, "--stop-after", "\(20 << 20)"], home: home)
        let first = try #require(try Self.event("offset", in: second)["offset"] as? Int)
        #expect(first > 0 && first <= 16 << 20, "the first request's bytes were kept: \(first)")
        _ = try Self.event("stopped", in: second)

        // 3. Resumed and held open mid-body while the server is killed.
        let held = try BackgroundProcess("python3", [Self.client, "resume", url(location), path, "--stop-after", "\(8 << 20)", "--hold"] + Self.credentials(home))
        let holding = try await held.waitForOutput { $0.contains("\"holding\"") }
        let reported = try #require(try Self.event("offset", in: holding)["offset"] as? Int)
        #expect(reported > first, "the second request's bytes were kept: \(reported) after \(first)")
        server.process.signal(SIGKILL)
        _ = try await server.process.waitForExit()
        held.signal(SIGKILL)
        _ = try await held.waitForExit()
        #expect(Self.inbox(home).isEmpty, "nothing is in the inbox before the upload completes")

        // The offset reported before the kill survived it; bytes past it, never reported,
        // were cut off by recovery.
        server = try await ServeProcessTests.Server.start(home: home)
        let id = String(location.dropFirst("/uploads/".count))
        #expect(Spool(root: "\(home)/spool").partialSize(id: id) == Int64(reported))
        let after = try await Self.run(["offset", url(location)], home: home)
        #expect(try Self.event("offset", in: after)["offset"] as? Int == reported, "\(after)")
        #expect(Self.inbox(home).isEmpty)

        // 4. Completed: the receipt is the whole file's, and so is the stored file.
        let last = try await Self.run(["resume", url(location), path], home: home)
        let final = try Self.event("final", in: last)
        #expect(final["status"] as? Int == 201, "\(last)")
        #expect(Self.header("upload-complete", of: final) == "?1")
        #expect(Self.header("wharf-receipt-signature", of: final) != nil)
        let receipt = try #require((try JSONSerialization.jsonObject(with: Data(((final["body"] as? String) ?? "").utf8))) as? [String: Any])
        #expect(receipt["sha256"] as? String == sha256)
        #expect(receipt["size"] as? Int == 64 << 20)
        #expect(receipt["id"] as? String == id, "the receipt has the upload's id")
        let stored = try #require(Self.inbox(home).first)
        #expect(Self.inbox(home) == ["\(id)-big.bin"])
        #expect(try Self.sha256("\(home)/spool/inbox/acme/\(stored)") == sha256)
        #expect(Spool(root: "\(home)/spool").partialIDs().isEmpty)
        #expect(try TestGateway.registry(home: home).partialUploads().isEmpty)

        // A HEAD after completion says so; nothing more can be appended.
        let done = try await Self.run(["offset", url(location)], home: home)
        let state = try Self.event("offset", in: done)
        #expect(state["complete"] as? Bool == true)
        #expect(state["offset"] as? Int == 64 << 20)
        server.process.signal(SIGTERM)
        #expect(try await server.process.waitForExit() == 0)
    }
}

/// Each rule of resumable uploads, with curl (which takes a `104` as an interim response):
/// every refusal names what to do and leaves the upload, the spool and the registry as
/// they were, or removes the upload where the draft says it is deactivated.
@Suite struct ResumableUploadRuleTests {
    /// curl's answer with its headers (lower-cased names).
    struct Answer {
        let status: Int
        let headers: [String: String]
        let body: String
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
    }

    static func curl(_ gateway: TestGateway, _ arguments: [String], as partner: String = "acme") async throws -> Answer {
        let dump = gateway.fixture.directory.file("headers-\(UUID().uuidString)")
        let result = try await gateway.curl(["-D", dump] + arguments, as: partner)
        let text = (try? String(contentsOfFile: dump, encoding: .utf8)) ?? ""
        // The final response's headers: those after the last status line.
        let blocks = text.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        var headers: [String: String] = [:]
        for line in (blocks.last ?? "").components(separatedBy: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return Answer(status: result.status, headers: headers, body: result.body)
    }

    /// Creates an upload of `total` bytes with its first `first` bytes; returns its path.
    static func create(_ gateway: TestGateway, _ file: String, first: Int, total: Int?, extra: [String] = []) async throws -> String {
        let part = gateway.fixture.directory.file("first-\(UUID().uuidString)")
        let whole = try Data(contentsOf: URL(fileURLWithPath: file))
        try whole.prefix(first).write(to: URL(fileURLWithPath: part))
        let length = total.map { ["-H", "Upload-Length: \($0)"] } ?? []
        let answer = try await curl(gateway, ["-H", "Upload-Complete: ?0"] + length + ["--upload-file", part, gateway.url("/inbox/order.xml")] + extra)
        #expect(answer.status == 201, "\(answer.body)")
        #expect(answer.headers["upload-offset"] == "\(first)")
        #expect(answer.headers["upload-complete"] == "?0")
        return try #require(answer.headers["location"])
    }

    static func patch(
        _ gateway: TestGateway, _ location: String, offset: Int, complete: Bool, body: String, type: String = "application/partial-upload",
        extra: [String] = [], as partner: String = "acme"
    ) async throws -> Answer {
        try await curl(gateway, [
            "-X", "PATCH", "-H", "Content-Type: \(type)", "-H", "Upload-Offset: \(offset)", "-H", "Upload-Complete: \(complete ? "?1" : "?0")",
            "--data-binary", "@\(body)", gateway.url(location),
        ] + extra, as: partner)
    }

    static func offset(_ gateway: TestGateway, _ location: String, as partner: String = "acme") async throws -> Answer {
        try await curl(gateway, ["-I", gateway.url(location)], as: partner)
    }

    static func slice(_ gateway: TestGateway, _ file: String, _ range: Range<Int>) throws -> String {
        let path = gateway.fixture.directory.file("slice-\(UUID().uuidString)")
        try Data(contentsOf: URL(fileURLWithPath: file))[range].write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func appendsAreCheckedAndOnlyTheOwnerSeesItsUpload() async throws {
        let gateway = try await TestGateway.start()
        try await gateway.fixture.succeed("partner", "add", "beta")
        try await gateway.fixture.succeed("partner", "issue", "beta")
        let (file, sha256) = try gateway.randomFile("order.xml", size: 300_000)
        let location = try await Self.create(gateway, file, first: 100_000, total: 300_000)
        let id = String(location.dropFirst("/uploads/".count))
        let rest = try Self.slice(gateway, file, 100_000..<300_000)
        #expect(Spool(root: "\(gateway.home)/spool").partialSize(id: id) == 100_000)
        let untouched = try gateway.spoolState()

        // A wrong offset: 409 with the right one.
        let wrong = try await Self.patch(gateway, location, offset: 5, complete: true, body: rest)
        #expect(wrong.status == 409)
        #expect(wrong.headers["upload-offset"] == "100000")
        #expect(wrong.json?["error"] as? String == "mismatching_upload_offset")
        // Not the draft's media type: 415, naming it.
        let type = try await Self.patch(gateway, location, offset: 100_000, complete: true, body: rest, type: "application/octet-stream")
        #expect(type.status == 415)
        #expect(type.headers["accept-patch"] == "application/partial-upload")
        // No Upload-Complete: 400 saying what to send.
        let noComplete = try await Self.curl(gateway, [
            "-X", "PATCH", "-H", "Content-Type: application/partial-upload", "-H", "Upload-Offset: 100000", "--data-binary", "@\(rest)", gateway.url(location),
        ])
        #expect(noComplete.status == 400)
        #expect((noComplete.json?["message"] as? String)?.contains("Upload-Complete") == true)
        // A length that disagrees with the one given at creation.
        let longer = try await Self.patch(gateway, location, offset: 100_000, complete: false, body: rest, extra: ["-H", "Upload-Length: 400000"])
        #expect(longer.status == 400)
        #expect(longer.json?["error"] as? String == "inconsistent_length")
        // Content that does not match its Content-Digest is not kept.
        let digest = try await Self.patch(gateway, location, offset: 100_000, complete: false, body: rest, extra: ["-H", "Content-Digest: sha-256=:\(Data(repeating: 0, count: 32).base64EncodedString()):"])
        #expect(digest.status == 400)
        #expect(digest.json?["error"] as? String == "digest_mismatch")
        // Another partner: no such upload, whatever it asks.
        let other = try await Self.patch(gateway, location, offset: 100_000, complete: true, body: rest, as: "beta")
        #expect(other.status == 404)
        #expect(try await Self.offset(gateway, location, as: "beta").status == 404)
        #expect(try await Self.curl(gateway, ["-X", "DELETE", gateway.url(location)], as: "beta").status == 404)
        #expect(try gateway.spoolState() == untouched, "no refusal changed the upload")
        let head = try await Self.offset(gateway, location)
        #expect(head.status == 204)
        #expect(head.headers["upload-offset"] == "100000")
        #expect(head.headers["upload-length"] == "300000")
        #expect(head.headers["upload-complete"] == "?0")
        #expect(head.headers["cache-control"] == "no-store")

        // The right append, in two parts, completes it; the receipt is the whole file's.
        let middle = try Self.slice(gateway, file, 100_000..<200_000)
        let appended = try await Self.patch(gateway, location, offset: 100_000, complete: false, body: middle,
                                            extra: ["-H", "Content-Digest: \(ContentDigest.header(sha256: SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: middle)))))"])
        #expect(appended.status == 204)
        #expect(appended.headers["upload-offset"] == "200000")
        #expect(Self.inbox(gateway).isEmpty)
        let last = try Self.slice(gateway, file, 200_000..<300_000)
        let completed = try await Self.patch(gateway, location, offset: 200_000, complete: true, body: last)
        #expect(completed.status == 201, "\(completed.body)")
        #expect(completed.headers["upload-complete"] == "?1")
        #expect(completed.json?["sha256"] as? String == sha256)
        #expect(completed.json?["id"] as? String == id)
        #expect(Self.inbox(gateway) == ["\(id)-order.xml"])
        // Complete: nothing more is appended, and it cannot be cancelled.
        let again = try await Self.patch(gateway, location, offset: 300_000, complete: true, body: last)
        #expect(again.status == 400)
        #expect(again.json?["error"] as? String == "upload_complete")
        #expect(try await Self.curl(gateway, ["-X", "DELETE", gateway.url(location)]).status == 400)
        #expect(Self.inbox(gateway) == ["\(id)-order.xml"])
        try await gateway.stop()
    }

    static func inbox(_ gateway: TestGateway) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/inbox/acme")) ?? []
    }

    @Test func limitsLengthsAndTheWholeFilesDigestAreEnforced() async throws {
        let gateway = try await TestGateway.start()
        try await gateway.fixture.succeed("partner", "update", "acme", "--max-upload-size", "250000")
        let (file, _) = try gateway.randomFile("order.xml", size: 300_000)
        let before = try gateway.spoolState()

        // A stated length over the partner's limit: 413 with the limits, nothing created.
        let over = try await Self.curl(gateway, ["-H", "Upload-Complete: ?0", "-H", "Upload-Length: 300000", "--upload-file", file, gateway.url("/inbox/order.xml")])
        #expect(over.status == 413)
        #expect(over.headers["upload-limit"] == "max-size=250000, max-age=86400")
        // Lengths that disagree: 400, nothing created.
        let small = try Self.slice(gateway, file, 0..<1000)
        let disagree = try await Self.curl(gateway, ["-H", "Upload-Complete: ?1", "-H", "Upload-Length: 999", "--upload-file", small, gateway.url("/inbox/order.xml")])
        #expect(disagree.status == 400)
        #expect(disagree.json?["error"] as? String == "inconsistent_length")
        #expect(try gateway.spoolState() == before, "refused creations leave nothing")

        // Appends that pass the limit in total: 413 with the limits, and the upload is removed.
        let location = try await Self.create(gateway, file, first: 200_000, total: nil)
        let passed = try await Self.patch(gateway, location, offset: 200_000, complete: true, body: try Self.slice(gateway, file, 200_000..<300_000))
        #expect(passed.status == 413)
        #expect(passed.headers["upload-limit"] == "max-size=250000, max-age=86400")
        #expect(try await Self.offset(gateway, location).status == 404)
        #expect(try gateway.spoolState() == before, "the upload is gone with its bytes")

        // The whole file's digest, declared at creation, does not match: 400, saying the
        // upload completed (`Upload-Complete: ?1`), and nothing is received.
        let zeros = "sha-256=:\(Data(repeating: 0, count: 32).base64EncodedString()):"
        let wrongWhole = try await Self.curl(gateway, ["-H", "Upload-Complete: ?1", "-H", "Repr-Digest: \(zeros)", "--upload-file", small, gateway.url("/inbox/order.xml")])
        #expect(wrongWhole.status == 400)
        #expect(wrongWhole.json?["error"] as? String == "digest_mismatch")
        #expect(wrongWhole.headers["upload-complete"] == "?1")
        #expect(try gateway.spoolState() == before)

        // An Upload-Complete that is not a structured Boolean is ignored, as the draft says:
        // an ordinary upload.
        let plain = try await Self.curl(gateway, ["-H", "Upload-Complete: yes", "--upload-file", small, gateway.url("/inbox/order.xml")])
        #expect(plain.status == 201)
        #expect(plain.headers["location"] == nil)
        #expect(Self.inbox(gateway).count == 1)
        #expect(Spool(root: "\(gateway.home)/spool").partialIDs().isEmpty)
        try await gateway.stop()
    }

    @Test func aCancelledUploadIsGoneAndOPTIONSAnnouncesResumption() async throws {
        let gateway = try await TestGateway.start()
        let options = try await Self.curl(gateway, ["-X", "OPTIONS", gateway.url("/inbox")])
        #expect(options.status == 204)
        #expect(options.headers["accept-patch"] == "application/partial-upload")
        #expect(options.headers["upload-limit"] == "max-size=1073741824, max-age=86400")
        let before = try gateway.spoolState()
        let (file, _) = try gateway.randomFile("order.xml", size: 5000)
        let location = try await Self.create(gateway, file, first: 1000, total: 5000)
        let untouched = try gateway.spoolState()
        // A DELETE (or HEAD, OPTIONS) takes no body: 400, and the upload stays.
        let withBody = try await Self.curl(gateway, ["-X", "DELETE", "--data-binary", "x", gateway.url(location)])
        #expect(withBody.status == 400)
        #expect(withBody.json?["error"] as? String == "unexpected_body")
        #expect(try gateway.spoolState() == untouched)
        let cancelled = try await Self.curl(gateway, ["-X", "DELETE", gateway.url(location)])
        #expect(cancelled.status == 204)
        #expect(try await Self.offset(gateway, location).status == 404)
        #expect(try gateway.spoolState() == before)
        try await gateway.stop()
    }

    /// The draft: an upload whose state is lost is deactivated. Its bytes removed by hand,
    /// an append gets 410 naming the fix, and the record goes too.
    @Test func anUploadWhoseBytesAreGoneIsRefusedAndForgotten() async throws {
        let gateway = try await TestGateway.start()
        let (file, _) = try gateway.randomFile("order.xml", size: 5000)
        let location = try await Self.create(gateway, file, first: 1000, total: 5000)
        let id = String(location.dropFirst("/uploads/".count))
        try FileManager.default.removeItem(atPath: Spool(root: "\(gateway.home)/spool").partialPath(id))
        let lost = try await Self.patch(gateway, location, offset: 1000, complete: true, body: try Self.slice(gateway, file, 1000..<5000))
        #expect(lost.status == 410)
        #expect(lost.json?["error"] as? String == "upload_lost")
        #expect((lost.json?["message"] as? String)?.contains("send the file again") == true)
        #expect(try gateway.registry.partialUploads().isEmpty)
        #expect(try await Self.offset(gateway, location).status == 404)
        #expect(Self.inbox(gateway).isEmpty)
        try await gateway.stop()
    }

    @Test func anUploadUntouchedForItsMaximumAgeIsRemovedWithItsBytes() async throws {
        let gateway = try await TestGateway.start { $0.partialUploadMaxAge = .seconds(1) }
        let (file, _) = try gateway.randomFile("order.xml", size: 5000)
        let location = try await Self.create(gateway, file, first: 1000, total: 5000)
        let spool = Spool(root: "\(gateway.home)/spool")
        try await Wait.until("the sweep") { spool.partialIDs().isEmpty }
        #expect(try gateway.registry.partialUploads().isEmpty)
        #expect(try await Self.offset(gateway, location).status == 404)
        try await gateway.stop()
    }

    /// The draft: a request to an upload that another still holds (its client gave up on
    /// it, the server has not noticed) cuts that one off first, so the offset reported is
    /// the one the next append must use, and the two never write at once.
    @Test func aNewRequestCutsOffOneStillHoldingTheUpload() async throws {
        let gateway = try await TestGateway.start()
        let path = gateway.fixture.directory.file("big.bin")
        let made = try await Command.runAsync("dd", ["if=/dev/urandom", "of=\(path)", "bs=1M", "count=48", "status=none"])
        #expect(made.status == 0)
        let sha256 = try ResumableUploadTests.sha256(path)
        let location = try await Self.create(gateway, path, first: 100_000, total: 48 << 20)
        let held = try BackgroundProcess("python3", [
            ResumableUploadTests.client, "resume", gateway.url(location), path, "--stop-after", "\(32 << 20)", "--hold",
        ] + ResumableUploadTests.credentials(gateway.home))
        _ = try await held.waitForOutput { $0.contains("\"holding\"") }
        // While that connection is still open: a HEAD, then the rest.
        let finished = try await ResumableUploadTests.run(["resume", gateway.url(location), path], home: gateway.home)
        let reported = try #require(try ResumableUploadTests.event("offset", in: finished)["offset"] as? Int)
        #expect(reported > 100_000, "the held request's bytes were kept before the offset was read: \(reported)")
        let final = try ResumableUploadTests.event("final", in: finished)
        #expect(final["status"] as? Int == 201, "\(finished)")
        let stored = try #require(Self.inbox(gateway).first)
        #expect(try ResumableUploadTests.sha256("\(gateway.home)/spool/inbox/acme/\(stored)") == sha256)
        held.signal(SIGKILL)
        _ = try await held.waitForExit()
        try await gateway.stop()
    }
}

/// What a crash leaves of resumable uploads, put back in step at the next start.
@Suite struct ResumableUploadRecoveryTests {
    @Test func recoveryCutsFilesToTheirOffsetsAndRemovesWhatCannotResume() throws {
        let fixture = try TestGateway.homeWithAcme()
        let registry = try TestGateway.registry(home: fixture.home)
        let spool = Spool(root: "\(fixture.home)/spool")
        try spool.prepare()
        func upload(_ id: String, offset: Int64) -> PartialUpload {
            PartialUpload(id: id, partner: "acme", filename: "\(id).xml", length: nil, offset: offset, sha256: nil, idempotencyKey: nil, createdAt: Date())
        }
        func file(_ id: String, bytes: Int) throws {
            try spool.createPartial(id: id)
            try Data(repeating: 0x61, count: bytes).write(to: URL(fileURLWithPath: spool.partialPath(id)))
        }
        // Past its offset: bytes never reported. No record: never announced. A record
        // without its file, or a file shorter than its offset: its state is lost.
        try file("a", bytes: 250)
        try registry.createPartialUpload(upload("a", offset: 100))
        try file("b", bytes: 10)
        try registry.createPartialUpload(upload("c", offset: 0))
        try file("d", bytes: 100)
        try registry.createPartialUpload(upload("d", offset: 500))
        // Completed and committed, the crash before the rename.
        try file("e", bytes: 3)
        try registry.createPartialUpload(upload("e", offset: 3))
        let receipt = Receipt(
            id: "e", partner: "acme", filename: "e.xml", storedName: "e-e.xml", size: 3,
            sha256: "9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0", receivedAt: Date(), idempotencyKey: nil
        )
        _ = try registry.commit(receipt, audit: { _ in AuditEvent(outcome: .accepted, status: 201, partner: "acme", subject: nil, fingerprint: nil, remoteAddress: nil, detail: "e") }, install: {})

        try SpoolRecovery.run(store: registry, spool: spool, logger: .init(label: "test"))
        #expect(spool.partialIDs() == ["a"])
        #expect(spool.partialSize(id: "a") == 100)
        #expect(try registry.partialUploads().map(\.id) == ["a"])
        #expect(FileManager.default.fileExists(atPath: "\(spool.inboxDirectory(for: "acme"))/e-e.xml"))
    }
}

/// The partner bundle's README tells partners how to resume with curl alone; its lines run.
@Suite struct ResumableBundleREADMETests {
    @Test func theBundlesCurlLinesSendALargeFileAsAResumableUpload() async throws {
        let gateway = try await TestGateway.start()
        let bundle = "\(gateway.home)/partners/acme"
        let readme = try String(contentsOfFile: "\(bundle)/README.md", encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "## Large files: resume a broken upload").dropFirst().first, "\(readme)")
        var script = try #require(section.components(separatedBy: "```sh\n").dropFirst().first?.components(separatedBy: "```").first)
        // The bundle names the gateway's address as configured; this one listens elsewhere.
        let configured = try #require(script.firstMatch(of: /https:\/\/[^\/" ]+/)).output
        script = script.replacingOccurrences(of: String(configured), with: gateway.url(""))
        let (file, sha256) = try gateway.randomFile("big.bin", size: 3_000_000)
        try FileManager.default.copyItem(atPath: file, toPath: "\(bundle)/big.bin")
        let ran = try await Command.runAsync("bash", ["-euo", "pipefail", "-c", "cd '\(bundle)'\n" + script])
        #expect(ran.status == 0, "\(ran.stdout) \(ran.stderr)")
        let receipt = try #require((try? JSONSerialization.jsonObject(with: Data(ran.stdout.utf8))) as? [String: Any], "\(ran.stdout) \(ran.stderr)")
        #expect(receipt["sha256"] as? String == sha256)
        #expect(receipt["size"] as? Int == 3_000_000)
        #expect(Spool(root: "\(gateway.home)/spool").partialIDs().isEmpty)
        try await gateway.stop()
    }
}
