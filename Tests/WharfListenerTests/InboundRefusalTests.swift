import Foundation
import Testing
import WharfCore
import WharfPKI
import WharfTestSupport
import X509

/// Every inbound refusal: the client is told why (or the handshake fails), the refusal
/// is in the audit trail, and the spool and the registry are as they were.
@Suite(.serialized) struct InboundRefusalTests {
    /// A client certificate made for the test, written to `NAME.crt` and `NAME.key`.
    func makeClient(_ name: String, in gateway: TestGateway, by authority: CertificateAuthority, now: Date = Date(), days: Int = 30) throws -> [String] {
        let client = try authority.issueClientCertificate(commonName: name, organization: "Test", keyType: .p256, days: days, now: now)
        let directory = gateway.fixture.directory
        try directory.write("\(name).crt", client.certificate.pemText)
        try directory.write("\(name).key", client.privateKeyPEM)
        return ["--cert", directory.file("\(name).crt"), "--key", directory.file("\(name).key"), "--cacert", "\(gateway.home)/pki/identity-ca.crt"]
    }

    func wharfCA(_ gateway: TestGateway) throws -> CertificateAuthority {
        try PKIDirectory(path: "\(gateway.home)/pki").loadAuthority()
    }

    /// Uploads a small file presenting `credentials`; the answer, and the spool before and after.
    func upload(to gateway: TestGateway, presenting credentials: [String]) async throws -> (result: HTTPResult, before: [String], after: [String]) {
        let file = try gateway.randomFile("a.txt", size: 100)
        let before = try gateway.spoolState()
        let result = try await gateway.curl(credentials + ["--upload-file", file.path, gateway.url("/inbox/a.txt")], as: nil)
        return (result, before, try gateway.spoolState())
    }

    func latestAudit(_ gateway: TestGateway) throws -> AuditEvent? {
        try gateway.registry.auditEvents(limit: 1).first
    }

    @Test func withoutAClientCertificateTheHandshakeFails() async throws {
        let gateway = try await TestGateway.start()
        let file = try gateway.randomFile("a.txt", size: 100)
        let before = try gateway.spoolState()
        let result = try await gateway.put(file.path, as: "a.txt", partner: nil)
        // The refusal is written, counted with others of its minute, when the gateway stops.
        try await gateway.stop()
        let after = try gateway.spoolState()
        #expect(result.curlStatus != 0 && result.status == 0, "\(result.stderr)")
        #expect(after == before)
        let event = try #require(try latestAudit(gateway))
        #expect(event.outcome == .refused && event.detail?.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") == true, "\(event)")
    }

    @Test func aCertificateFromAForeignCAFailsTheHandshake() async throws {
        let gateway = try await TestGateway.start()
        let foreign = try CertificateAuthority.create(commonName: "Foreign Root", keyType: .p256)
        let credentials = try makeClient("stranger", in: gateway, by: foreign)
        // Even with a subject the registry knows.
        try await gateway.fixture.succeed("partner", "add", "known", "--subject", "CN=stranger,O=Test", "--trust-ca", "\(gateway.home)/pki/ca.crt")
        let (result, before, after) = try await upload(to: gateway, presenting: credentials)
        try await gateway.stop()
        #expect(result.curlStatus != 0 && result.status == 0, "\(result.stderr)")
        #expect(after == before)
    }

    @Test func anExpiredCertificateFailsTheHandshake() async throws {
        let gateway = try await TestGateway.start()
        let credentials = try makeClient("expired", in: gateway, by: try wharfCA(gateway), now: Date().addingTimeInterval(-10 * 86_400), days: 1)
        try await gateway.fixture.succeed("partner", "add", "late", "--subject", "CN=expired,O=Test", "--trust-ca", "\(gateway.home)/pki/ca.crt")
        let (result, before, after) = try await upload(to: gateway, presenting: credentials)
        try await gateway.stop()
        #expect(result.curlStatus != 0 && result.status == 0, "\(result.stderr)")
        #expect(after == before)
    }

    @Test func aValidCertificateOfNoPartnerGets403() async throws {
        let gateway = try await TestGateway.start()
        let credentials = try makeClient("nobody", in: gateway, by: try wharfCA(gateway))
        let (result, before, after) = try await upload(to: gateway, presenting: credentials)
        try await gateway.stop()
        #expect(result.status == 403)
        #expect(result.json?["error"] as? String == "unknown_partner")
        #expect(after == before)
        let event = try #require(try latestAudit(gateway))
        #expect(event.outcome == .refused && event.status == 403 && event.subject == "CN=nobody,O=Test")
        #expect(event.fingerprint != nil && event.remoteAddress?.hasPrefix("127.0.0.1:") == true)
    }

    @Test func aDisabledPartnerGets403() async throws {
        let gateway = try await TestGateway.start()
        try await gateway.fixture.succeed("partner", "disable", "acme")
        let file = try gateway.randomFile("a.txt", size: 100)
        let before = try gateway.spoolState()
        let result = try await gateway.put(file.path, as: "a.txt")
        let after = try gateway.spoolState()
        try await gateway.fixture.succeed("partner", "enable", "acme")
        let again = try await gateway.put(file.path, as: "a.txt")
        try await gateway.stop()
        #expect(result.status == 403)
        #expect(result.json?["message"] as? String == "this client certificate is not accepted: partner 'acme' is disabled")
        #expect(after == before)
        #expect(again.status == 201)
    }

    @Test func aPartnerDisabledWhileItsKeepAliveConnectionIsOpenIsRefusedOnItsNextRequest() async throws {
        let gateway = try await TestGateway.start()
        let client = try BackgroundProcess("openssl", gateway.sClient())
        client.send("PUT /inbox/one.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\none")
        try await client.waitForOutput { $0.contains("201 Created") && $0.contains("\"sha256\"") }
        try await gateway.fixture.succeed("partner", "disable", "acme")
        client.send("PUT /inbox/two.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\ntwo")
        let output = try await client.waitForOutput { $0.contains("403 Forbidden") && $0.contains("disabled") }
        client.closeInput()
        try await gateway.stop()
        #expect(output.components(separatedBy: "HTTP/1.1 ").count == 3, "one connection, two responses: \(output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/inbox/acme").count == 1)
    }

    /// An open connection whose first upload was accepted; its partner is remembered.
    func connectionWithOneUpload(_ gateway: TestGateway) async throws -> BackgroundProcess {
        let client = try BackgroundProcess("openssl", gateway.sClient())
        client.send("PUT /inbox/one.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\none")
        try await client.waitForOutput { $0.contains("201 Created") && $0.contains("\"sha256\"") }
        return client
    }

    @Test func aPartnerDisabledWhileItsBodyArrivesGetsNothingStored() async throws {
        let gateway = try await TestGateway.start()
        let client = try await connectionWithOneUpload(gateway)
        client.send("PUT /inbox/two.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n")
        // The head was accepted: the gateway asks for the body.
        try await client.waitForOutput { $0.contains("100 Continue") }
        try await gateway.fixture.succeed("partner", "disable", "acme")
        client.send("twotwo")
        let output = try await client.waitForOutput { $0.contains("403 Forbidden") && $0.contains("disabled") }
        client.closeInput()
        try await gateway.stop()
        #expect(!output.contains("\"two.txt\""), "\(output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/inbox/acme").count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/tmp").isEmpty)
        #expect(try gateway.registry.receipts().count == 1)
        let event = try #require(try latestAudit(gateway))
        #expect(event.outcome == .refused && event.status == 403 && event.detail == "two.txt: this client certificate is not accepted: partner 'acme' is disabled")
    }

    @Test func anUploadLimitLoweredWhileAConnectionIsOpenAppliesToItsNextUpload() async throws {
        let gateway = try await TestGateway.start()
        let client = try await connectionWithOneUpload(gateway)
        try await gateway.fixture.succeed("partner", "update", "acme", "--max-upload-size", "1K")
        let body = String(repeating: "x", count: 2000)
        client.send("PUT /inbox/big.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2000\r\n\r\n\(body)")
        let output = try await client.waitForOutput { $0.contains("413 Payload Too Large") }
        client.closeInput()
        try await gateway.stop()
        #expect(output.contains("over this partner's limit of 1024 bytes"), "\(output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/inbox/acme").count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/tmp").isEmpty)
    }

    @Test func aCertificateThatNowMapsToAnotherPartnerHasItsUploadRefusedNotFiledUnderEither() async throws {
        let gateway = try await TestGateway.start()
        let client = try await connectionWithOneUpload(gateway)
        let fingerprint = try Command.run("openssl", ["x509", "-in", "\(gateway.home)/partners/acme/acme.crt", "-noout", "-fingerprint", "-sha256"])
        try await gateway.fixture.succeed("partner", "remove", "acme")
        try await gateway.fixture.succeed("partner", "add", "other", "--fingerprint", fingerprint.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        client.send("PUT /inbox/two.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\ntwo")
        let output = try await client.waitForOutput { $0.contains("409 Conflict") && $0.contains("send the file again") }
        client.closeInput()
        try await gateway.stop()
        #expect(output.contains("partner_changed") && output.contains("now maps to partner 'other'"), "\(output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/inbox/acme").count == 1)
        #expect(!FileManager.default.fileExists(atPath: "\(gateway.home)/spool/inbox/other"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/tmp").isEmpty)
        #expect(try gateway.registry.receipts().count == 1)
    }

    @Test func aPartnerDisabledSinceItsLastUploadHearsThatRatherThanAnotherRefusal() async throws {
        let gateway = try await TestGateway.start()
        let client = try await connectionWithOneUpload(gateway)
        try await gateway.fixture.succeed("partner", "disable", "acme")
        // Refused for its header, too, but the partner's status comes first.
        client.send("PUT /inbox/two.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Digest: sha-256=:bad:\r\n\r\ntwo")
        let output = try await client.waitForOutput { output in
            output.range(of: "HTTP/1.1 4").map { output[$0.upperBound...].contains("}") } ?? false
        }
        client.closeInput()
        try await gateway.stop()
        #expect(output.contains("403 Forbidden") && output.contains("disabled"), "\(output)")
        #expect(!output.contains("400 Bad Request"), "\(output)")
    }

    @Test(arguments: [
        ("/inbox/%2e%2e", "'..' is not a file name"),
        ("/inbox/.", "'.' is not a file name"),
        ("/inbox/", "the file name is empty"),
        ("/inbox/a%2Fb", "path separator"),
        ("/inbox/a%5Cb", "path separator"),
        ("/inbox/a%00b", "control character"),
        ("/inbox/a%0Ab", "control character"),
        ("/inbox/" + String(repeating: "n", count: 256), "longer than 255 bytes"),
    ])
    func aBadFileNameGets400(path: String, says: String) async throws {
        let gateway = try await TestGateway.start()
        let file = try gateway.randomFile("a.txt", size: 100)
        let before = try gateway.spoolState()
        // Not --upload-file: curl would append the local file name to a URL ending in / or /.
        let result = try await gateway.curl(["--path-as-is", "-X", "PUT", "--data-binary", "@\(file.path)", gateway.url(path)])
        let after = try gateway.spoolState()
        try await gateway.stop()
        #expect(result.status == 400, "\(result.body)")
        #expect(result.json?["error"] as? String == "bad_filename")
        #expect((result.json?["message"] as? String)?.contains(says) == true, "\(result.body)")
        #expect(after == before)
    }

    /// 600,000 bytes pass the 256 KiB write buffer: the staged file exists by then and
    /// must be removed; 50,000 never reach the disk. 3 MiB and 5 bytes are written past the
    /// page cache, hashed and written on the thread pool one 1 MiB buffer after another.
    @Test(arguments: [50_000, 600_000, 3 * 1024 * 1024 + 5])
    func aDigestMismatchGets400AndKeepsNothing(size: Int) async throws {
        let gateway = try await TestGateway.start { configuration in
            configuration.directWriteThreshold = 1024 * 1024
        }
        let file = try gateway.randomFile("a.txt", size: size)
        let wrong = ContentDigest.header(sha256: [UInt8](repeating: 7, count: 32))
        let before = try gateway.spoolState()
        let result = try await gateway.put(file.path, as: "a.txt", headers: ["Content-Digest: \(wrong)"])
        let malformed = try await gateway.put(file.path, as: "a.txt", headers: ["Content-Digest: sha-256=:nope:"])
        let after = try gateway.spoolState()
        try await gateway.stop()
        #expect(result.status == 400)
        #expect(result.json?["error"] as? String == "digest_mismatch")
        #expect(malformed.status == 400)
        #expect(after == before)
    }

    @Test func anOversizeBodyGets413WhetherDeclaredOrChunked() async throws {
        let gateway = try await TestGateway.start()
        try await gateway.fixture.succeed("partner", "update", "acme", "--max-upload-size", "64K")
        let large = try gateway.randomFile("large.bin", size: 200_000)
        let before = try gateway.spoolState()
        let declared = try await gateway.put(large.path, as: "large.bin")
        let chunked = try await gateway.put(large.path, as: "large.bin", headers: ["Transfer-Encoding: chunked"])
        let after = try gateway.spoolState()
        let small = try gateway.randomFile("small.bin", size: 60_000)
        let fits = try await gateway.put(small.path, as: "small.bin", headers: ["Transfer-Encoding: chunked"])
        try await gateway.stop()
        #expect(declared.status == 413, "\(declared.body) \(declared.stderr)")
        #expect(declared.json?["message"] as? String == "the body of 200000 bytes is over this partner's limit of 65536 bytes")
        #expect(chunked.status == 413, "\(chunked.body) \(chunked.stderr)")
        #expect(chunked.json?["message"] as? String == "the body passed this partner's limit of 65536 bytes")
        #expect(after == before)
        #expect(fits.status == 201)
    }

    @Test func aBodyWithoutLengthGets411AndUnknownPathsAndMethodsGet404And405() async throws {
        let gateway = try await TestGateway.start()
        let client = try BackgroundProcess("openssl", gateway.sClient())
        client.send("PUT /inbox/x.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        let output = try await client.waitForOutput { $0.contains("length_required") }
        #expect(output.hasPrefix("HTTP/1.1 411 Length Required"))
        client.closeInput()

        let missing = try await gateway.curl([gateway.url("/elsewhere")])
        let delete = try await gateway.curl(["-X", "DELETE", gateway.url("/inbox/x.txt")])
        try await gateway.stop()
        #expect(missing.status == 404 && missing.json?["error"] as? String == "not_found")
        #expect(delete.status == 405 && delete.json?["error"] as? String == "method_not_allowed")
    }

    /// Also with the upload written past the page cache, its first buffers being hashed
    /// and written on the thread pool when the client goes.
    @Test(arguments: [false, true])
    func aClientThatDisconnectsMidBodyLeavesNothing(direct: Bool) async throws {
        let gateway = try await TestGateway.start { configuration in
            if direct { configuration.directWriteThreshold = 0 }
        }
        let before = try gateway.spoolState()
        let client = try BackgroundProcess("openssl", gateway.sClient())
        let (declared, sent) = direct ? (10_000_000, 3_500_000) : (1_000_000, 300_000)
        client.send("PUT /inbox/cut.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(declared)\r\n\r\n" + String(repeating: "x", count: sent))
        try await Wait.until("a staged upload") {
            (try? FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/tmp"))?.isEmpty == false
        }
        client.signal(SIGKILL)
        try await Wait.until("the refusal in the audit trail") {
            try latestAudit(gateway)?.detail?.hasPrefix("cut.bin: ") == true
        }
        let after = try gateway.spoolState()
        try await gateway.stop()
        #expect(after == before)
    }

    @Test func aClientThatStopsSendingMidBodyGetsNoSecondAnswerAndLeavesNothing() async throws {
        // Every body byte is written to the staged file as it arrives, so there is a real
        // file to leave behind.
        let gateway = try await TestGateway.start { $0.writeBufferSize = 1 }
        let before = try gateway.spoolState()
        // Without -quiet (which implies -ign_eof), s_client ends the connection at end of input.
        let client = try BackgroundProcess("openssl", gateway.sClient([]))
        client.send("PUT /inbox/half.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nten bytes.")
        try await Wait.until("the upload staged") { try Self.stagedBytes(gateway) == 10 }
        // End of input: s_client closes its side of the TLS connection, 990 bytes short.
        client.closeInput()
        _ = try await client.waitForExit(timeout: .seconds(10))
        #expect(client.stdout.components(separatedBy: "HTTP/1.1 ").count - 1 <= 1, "\(client.stdout)")
        // Whether the cut-off reaches the upload as an end of stream or as NIO's parse
        // error depends on timing; either way the staged file goes.
        try await Wait.until("the spool as it was") { try gateway.spoolState() == before }
        try await gateway.stop()
    }

    /// The bytes in the staged files of `spool/tmp/`.
    static func stagedBytes(_ gateway: TestGateway) throws -> Int {
        let staging = "\(gateway.home)/spool/tmp"
        return try FileManager.default.contentsOfDirectory(atPath: staging).reduce(0) { total, name in
            total + ((try FileManager.default.attributesOfItem(atPath: "\(staging)/\(name)")[.size] as? Int) ?? 0)
        }
    }

    @Test func aBodyThatCannotBeParsedGetsOneAnswerAndLeavesNothing() async throws {
        let gateway = try await TestGateway.start()
        let before = try gateway.spoolState()
        let client = try BackgroundProcess("openssl", gateway.sClient())
        // One chunk, then a chunk size that is not hexadecimal: the request breaks off mid-body.
        client.send("PUT /inbox/broken.bin HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
        _ = try await client.waitForExit(timeout: .seconds(10))
        // One answer, the upload's 400, then the connection closes: a second answer would
        // break HTTP's order (and trap in NIO's debug checks).
        #expect(client.stdout.components(separatedBy: "HTTP/1.1 ").count - 1 == 1, "\(client.stdout)")
        #expect(client.stdout.hasPrefix("HTTP/1.1 400"), "\(client.stdout)")
        #expect(client.stdout.contains(#""error":"bad_request""#), "\(client.stdout)")
        try await Wait.until("the refusal in the audit trail") {
            try latestAudit(gateway)?.detail?.hasPrefix("broken.bin: the body is not valid HTTP/1.1") == true
        }
        #expect(try gateway.spoolState() == before)
        try await gateway.stop()
    }

    /// Requests framed in a way Wharf does not read get one answer and a close, and the
    /// gateway goes on serving. (Before, NIO's error handler answered 400 while the upload
    /// answered too: two responses, which stopped a debug build.)
    @Test(arguments: [
        ("PUT /inbox/a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello", "501", "unsupported_transfer_encoding"),
        ("PUT /inbox/a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "501", "unsupported_transfer_encoding"),
        ("PUT /inbox/a.txt HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "400", "missing_host"),
        ("NOT HTTP AT ALL\r\n\r\n", "400", "bad_request"),
    ])
    func aFramingWharfDoesNotReadGetsOneAnswerAndTheGatewayKeepsServing(request: String, status: String, code: String) async throws {
        let gateway = try await TestGateway.start()
        let before = try gateway.spoolState()
        let client = try BackgroundProcess("openssl", gateway.sClient())
        client.send(request)
        _ = try await client.waitForExit(timeout: .seconds(10))
        #expect(client.stdout.split(separator: "\n").filter { $0.hasPrefix("HTTP/1.1 ") }.count == 1, "\(client.stdout)")
        #expect(client.stdout.hasPrefix("HTTP/1.1 \(status)"), "\(client.stdout)")
        #expect(client.stdout.contains("\"error\":\"\(code)\""), "\(client.stdout)")
        #expect(try gateway.spoolState() == before)
        let file = try gateway.randomFile("after.txt", size: 10)
        #expect(try await gateway.put(file.path, as: "after.txt").status == 201)
        try await gateway.stop()
    }

    @Test func slowAndIdleClientsAreDisconnected() async throws {
        let gateway = try await TestGateway.start { configuration in
            configuration.handshakeTimeout = .milliseconds(500)
            configuration.requestHeadTimeout = .milliseconds(500)
            configuration.bodyProgressTimeout = .milliseconds(500)
            // Each body byte is written before the next read, so the stalled upload has a
            // staged file when the timeout cuts it.
            configuration.writeBufferSize = 1
        }
        // No handshake at all: a plain TCP connection that says nothing.
        let silent = try await Command.runAsync("timeout", ["10", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\(gateway.port); cat <&3"])
        #expect(silent.status != 124, "the connection was not closed")

        let arguments = gateway.sClient()
        // A handshake, then no request head: s_client exits when the gateway closes (or the wait throws).
        let idle = try BackgroundProcess("openssl", arguments)
        _ = try await idle.waitForExit(timeout: .seconds(10))

        // A request head, then a body that stalls.
        let before = try gateway.spoolState()
        let stalled = try BackgroundProcess("openssl", arguments)
        stalled.send("PUT /inbox/slow.bin HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nten bytes.")
        _ = try await stalled.waitForExit(timeout: .seconds(10))
        // Ten bytes received means ten bytes written to the staged file: each write ends
        // before the next read, and the next read is what the timeout ended.
        try await Wait.until("the refusal in the audit trail (last: \((try? latestAudit(gateway)?.detail) ?? nil ?? "none"))") {
            try latestAudit(gateway)?.detail?.hasPrefix("slow.bin: the request broke off after 10 bytes of body") == true
        }
        try await Wait.until("the spool as it was") { try gateway.spoolState() == before }
        try await gateway.stop()
    }

    /// Also with the upload written past the page cache: its body is more than one 1 MiB
    /// aligned buffer, so an `O_DIRECT` write is what meets the full disk.
    @Test(.enabled(if: TmpfsMount.available, "mounting a tmpfs needs root"), arguments: [false, true])
    func aFullDiskGets507AndKeepsNothing(direct: Bool) async throws {
        let fixture = try TestGateway.homeWithAcme()
        let spool = "\(fixture.home)/spool"
        let mount = try TmpfsMount(at: spool, size: "256k")
        defer { mount.unmount() }
        let gateway = try await TestGateway.start(fixture: fixture) { configuration in
            if direct { configuration.directWriteThreshold = 0 }
        }
        let file = try gateway.randomFile("big.bin", size: direct ? 3_000_000 : 1_000_000)
        let before = try gateway.spoolState()
        let result = try await gateway.put(file.path, as: "big.bin")
        let after = try gateway.spoolState()
        try await gateway.stop()
        #expect(result.status == 507, "\(result.body) \(result.stderr)")
        #expect(result.json?["error"] as? String == "insufficient_storage")
        #expect(after == before)
    }
}

/// A small tmpfs mounted for a test: a file system that fills up for real.
struct TmpfsMount {
    let path: String

    static let available: Bool = {
        guard let probe = try? TemporaryDirectory("wharf-tmpfs-probe"),
              let mounted = try? Command.run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe.path]),
              mounted.succeeded
        else { return false }
        _ = try? Command.run("umount", [probe.path])
        return true
    }()

    init(at path: String, size: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let result = try Command.run("mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
        guard result.succeeded else { throw Wait.TimedOut(description: "mount failed: \(result.stderr)") }
        self.path = path
    }

    func unmount() {
        _ = try? Command.run("umount", [path])
    }
}

/// TLS session resumption skips certificate verification; the partner check must not.
@Suite(.serialized) struct ResumedSessionTests {
    @Test func aResumedSessionOfADisabledPartnerIsRefused() async throws {
        let gateway = try await TestGateway.start()
        let session = gateway.fixture.directory.file("session.pem")
        let tls = gateway.sClient(["-ign_eof"])
        let request = "PUT /inbox/a.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\na"
        let first = try await Command.runAsync("openssl", tls + ["-sess_out", session], input: Data(request.utf8))
        #expect(first.stdout.contains("201 Created"), "\(first.stdout)")

        try await gateway.fixture.succeed("partner", "disable", "acme")
        let resumed = try await Command.runAsync("openssl", tls + ["-sess_in", session], input: Data(request.utf8))
        try await gateway.stop()

        #expect(resumed.stdout.contains("Reused, TLSv1.3"), "the session was not resumed: \(resumed.stdout)")
        #expect(resumed.stdout.contains("403 Forbidden") && resumed.stdout.contains("disabled"), "\(resumed.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/inbox/acme").count == 1)
    }
}
