import Crypto
import Foundation
import Testing
import WharfCore
import WharfPKI
import WharfTestSupport

/// Uploads that succeed, with real clients: curl as the README shows it, and openssl s_client.
@Suite(.serialized) struct UploadTests {
    @Test func theREADMECurlLineStoresTheFileAndAnswersWithAReceipt() async throws {
        let gateway = try await TestGateway.start()
        let file = try gateway.randomFile("invoice.xml", size: 100_000)
        let result = try await gateway.put(file.path, as: "invoice.xml")
        try await gateway.stop()

        #expect(result.status == 201, "\(result.body) \(result.stderr)")
        let receipt = try #require(result.json)
        #expect(receipt["partner"] as? String == "acme")
        #expect(receipt["filename"] as? String == "invoice.xml")
        #expect(receipt["size"] as? Int == 100_000)
        #expect(receipt["sha256"] as? String == file.sha256)
        let receivedAt = try #require(receipt["received_at"] as? String)
        #expect(try Date(receivedAt, strategy: .iso8601).timeIntervalSinceNow > -60)
        let id = try #require(receipt["id"] as? String)

        let inbox = "\(gateway.home)/spool/inbox/acme"
        #expect(try FileManager.default.contentsOfDirectory(atPath: inbox) == ["\(id)-invoice.xml"])
        let stored = try Data(contentsOf: URL(fileURLWithPath: "\(inbox)/\(id)-invoice.xml"))
        #expect(SHA256.hash(data: stored).map { String(format: "%02x", $0) }.joined() == file.sha256)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/tmp").isEmpty)

        let listed = try await gateway.fixture.succeed("inbox", "list", "--json").stdout
        #expect(listed.contains(id) && listed.contains(file.sha256))
        let audit = try await gateway.fixture.succeed("audit", "list").stdout
        #expect(audit.contains("accepted") && audit.contains("acme") && audit.contains(id))
    }

    /// The README allows names of up to 255 bytes; the receipt id in front of the stored
    /// name must not push it past the file system's limit.
    @Test func aFileNameOf255BytesIsStoredAndItsReceiptKeepsTheWholeName() async throws {
        let gateway = try await TestGateway.start()
        let name = String(repeating: "r", count: 251) + ".xml"
        let file = try gateway.randomFile("long.xml", size: 2_000)
        let result = try await gateway.put(file.path, as: name)
        #expect(result.status == 201, "\(result.body)")
        let receipt = try #require(try JSONSerialization.jsonObject(with: Data(result.body.utf8)) as? [String: Any])
        #expect(receipt["filename"] as? String == name)
        let stored = try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/inbox/acme")
        #expect(stored.count == 1)
        #expect(stored.allSatisfy { $0.utf8.count <= 255 && $0.hasSuffix("~.xml") })
        try await gateway.stop()
    }

    @Test func aLargeUploadWrittenPastThePageCacheIsStoredWhole() async throws {
        let gateway = try await TestGateway.start { configuration in
            configuration.directWriteThreshold = 1024 * 1024
        }
        // Not a whole number of the 4 KiB blocks direct writes are made of.
        let file = try gateway.randomFile("large.bin", size: 5 * 1024 * 1024 + 7)
        let result = try await gateway.put(file.path, as: "large.bin")
        try await gateway.stop()

        #expect(result.status == 201, "\(result.body) \(result.stderr)")
        #expect(result.json?["sha256"] as? String == file.sha256)
        let id = try #require(result.json?["id"] as? String)
        let stored = try Data(contentsOf: URL(fileURLWithPath: "\(gateway.home)/spool/inbox/acme/\(id)-large.bin"))
        #expect(stored.count == 5 * 1024 * 1024 + 7)
        #expect(SHA256.hash(data: stored).map { String(format: "%02x", $0) }.joined() == file.sha256)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/tmp").isEmpty)
    }

    @Test func opensslSClientUploadsOverTLS13AndTLS12() async throws {
        let gateway = try await TestGateway.start()
        for version in ["-tls1_3", "-tls1_2"] {
            let client = try BackgroundProcess("openssl", gateway.sClient(["-quiet", version]))
            client.send("PUT /inbox/hello\(version).txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            let output = try await client.waitForOutput { $0.contains("\"sha256\"") }
            #expect(output.hasPrefix("HTTP/1.1 201 Created"), "\(output)")
            #expect(output.contains(#""sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824""#))
        }
        // Only TLS 1.2 and 1.3: a client able to speak TLS 1.1 (security level 0) is refused.
        let old = try await Command.runAsync("openssl", gateway.sClient(["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]), input: Data())
        #expect(!old.succeeded, "\(old.stdout)")
        #expect(old.stderr.contains("protocol version") || old.stderr.contains("unsupported protocol"), "\(old.stderr)")
        try await gateway.stop()
    }

    @Test func aRepeatedIdempotencyKeyGetsTheFirstReceiptAndNoSecondFile() async throws {
        let gateway = try await TestGateway.start()
        let file = try gateway.randomFile("order.json", size: 2_000)
        let other = try gateway.randomFile("other.json", size: 2_000)
        let first = try await gateway.put(file.path, as: "order.json", headers: ["Idempotency-Key: order-42"])
        let again = try await gateway.put(file.path, as: "order.json", headers: ["Idempotency-Key: order-42"])
        let before = try gateway.spoolState()
        let different = try await gateway.put(other.path, as: "order.json", headers: ["Idempotency-Key: order-42"])
        let after = try gateway.spoolState()
        let unrelated = try await gateway.put(file.path, as: "order.json", headers: ["Idempotency-Key: order-43"])
        try await gateway.stop()

        #expect(first.status == 201)
        #expect(again.status == 200)
        #expect(again.json?["id"] as? String == first.json?["id"] as? String)
        #expect(different.status == 409)
        #expect(different.json?["error"] as? String == "idempotency_conflict")
        #expect(after == before)
        #expect(unrelated.status == 201)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(gateway.home)/spool/inbox/acme").count == 2)
    }

    @Test func aMatchingContentDigestIsAccepted() async throws {
        let gateway = try await TestGateway.start()
        let file = try gateway.randomFile("telemetry.csv", size: 5_000)
        let digest = ContentDigest.header(sha256: try hexBytes(file.sha256))
        let result = try await gateway.put(file.path, as: "telemetry.csv", headers: ["Content-Digest: \(digest)"])
        try await gateway.stop()
        #expect(result.status == 201)
    }

    @Test func postTakesTheNameFromContentDispositionElseNamesTheFile() async throws {
        let gateway = try await TestGateway.start()
        let named = try await gateway.curl([
            "-X", "POST", "-H", "Content-Disposition: attachment; filename=\"orders 7.json\"",
            "-H", "Content-Type: application/json", "--data-binary", #"{"order":7}"#, gateway.url("/inbox"),
        ])
        let unnamed = try await gateway.curl([
            "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", #"{"order":8}"#, gateway.url("/inbox"),
        ])
        try await gateway.stop()
        #expect(named.status == 201)
        #expect(named.json?["filename"] as? String == "orders 7.json")
        #expect(unnamed.status == 201)
        let generated = try #require(unnamed.json?["filename"] as? String)
        #expect(generated.hasPrefix("upload-") && generated.hasSuffix(".json"))
    }

    @Test func getInboxListsTheCallersOwnReceiptsOnly() async throws {
        let gateway = try await TestGateway.start()
        try await gateway.fixture.succeed("partner", "add", "beta")
        try await gateway.fixture.succeed("partner", "issue", "beta")
        let file = try gateway.randomFile("a.txt", size: 10)
        let fromAcme = try await gateway.put(file.path, as: "from-acme.txt")
        let fromBeta = try await gateway.put(file.path, as: "from-beta.txt", partner: "beta")
        let acmeList = try await gateway.curl([gateway.url("/inbox")])
        let betaList = try await gateway.curl([gateway.url("/inbox")], as: "beta")
        try await gateway.stop()

        #expect(fromAcme.status == 201 && fromBeta.status == 201)
        let acmeNames = (acmeList.json?["receipts"] as? [[String: Any]])?.compactMap { $0["filename"] as? String }
        let betaNames = (betaList.json?["receipts"] as? [[String: Any]])?.compactMap { $0["filename"] as? String }
        #expect(acmeNames == ["from-acme.txt"])
        #expect(betaNames == ["from-beta.txt"])
    }

    @Test func aPartnerAddedWhileTheGatewayRunsIsAcceptedWithoutARestart() async throws {
        let gateway = try await TestGateway.start()
        let file = try gateway.randomFile("a.txt", size: 10)
        try await gateway.fixture.succeed("partner", "add", "newcomer")
        try await gateway.fixture.succeed("partner", "issue", "newcomer")
        let result = try await gateway.put(file.path, as: "hello.txt", partner: "newcomer")
        try await gateway.stop()
        #expect(result.status == 201, "\(result.body)")
        #expect(result.json?["partner"] as? String == "newcomer")
    }

    @Test func aPartnersOwnCAIsTrustedForThatPartnerOnly() async throws {
        let gateway = try await TestGateway.start()
        // A connection first, so that the listener has read the partners' CAs before.
        let file = try gateway.randomFile("a.txt", size: 10)
        let first = try await gateway.put(file.path, as: "a.txt")
        #expect(first.status == 201, "\(first.body) \(first.stderr)")
        // Gamma runs its own CA; it is registered while the gateway runs.
        let gammaCA = try CertificateAuthority.create(commonName: "Gamma Root", keyType: .p256)
        let directory = gateway.fixture.directory
        try directory.write("gamma-ca.pem", gammaCA.certificate.pemText)
        try await gateway.fixture.succeed("partner", "add", "gamma", "--trust-ca", directory.file("gamma-ca.pem"), "--subject", "CN=gamma-gw,O=Gamma")
        try await gateway.fixture.succeed("partner", "add", "delta", "--subject", "CN=delta-gw,O=Delta", "--trust-ca", "\(gateway.home)/pki/ca.crt")
        let gammaClient = try gammaCA.issueClientCertificate(commonName: "gamma-gw", organization: "Gamma", keyType: .p256)
        let impostor = try gammaCA.issueClientCertificate(commonName: "delta-gw", organization: "Delta", keyType: .p256)
        try directory.write("gamma.crt", gammaClient.certificate.pemText)
        try directory.write("gamma.key", gammaClient.privateKeyPEM)
        try directory.write("impostor.crt", impostor.certificate.pemText)
        try directory.write("impostor.key", impostor.privateKeyPEM)
        let ca = "\(gateway.home)/pki/identity-ca.crt"

        let gamma = try await gateway.curl(["--cert", directory.file("gamma.crt"), "--key", directory.file("gamma.key"), "--cacert", ca, "--upload-file", file.path, gateway.url("/inbox/a.txt")], as: nil)
        let before = try gateway.spoolState()
        let posing = try await gateway.curl(["--cert", directory.file("impostor.crt"), "--key", directory.file("impostor.key"), "--cacert", ca, "--upload-file", file.path, gateway.url("/inbox/a.txt")], as: nil)
        let after = try gateway.spoolState()
        try await gateway.stop()

        #expect(gamma.status == 201, "\(gamma.body) \(gamma.stderr)")
        #expect(gamma.json?["partner"] as? String == "gamma")
        #expect(posing.status == 403)
        #expect(posing.json?["error"] as? String == "unknown_partner")
        #expect(after == before)
    }
}

func hexBytes(_ hex: String) throws -> [UInt8] {
    var bytes: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        bytes.append(try #require(UInt8(hex[index..<next], radix: 16)))
        index = next
    }
    return bytes
}

@Suite(.serialized) struct CertificateReloadTests {
    func serverFingerprint(port: Int, ca: String) async throws -> String {
        let handshake = try await Command.runAsync("sh", ["-c",
            "openssl s_client -connect 127.0.0.1:\(port) -CAfile '\(ca)' </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"])
        return handshake.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func aReissuedServerCertificateIsServedOnTheNextConnection() async throws {
        let gateway = try await TestGateway.start()
        let ca = "\(gateway.home)/pki/identity-ca.crt"
        let before = try await serverFingerprint(port: gateway.port, ca: ca)
        try await gateway.fixture.succeed("ca", "reissue-server", "--server-name", "files.example.net")
        let after = try await serverFingerprint(port: gateway.port, ca: ca)
        let file = try gateway.randomFile("a.txt", size: 10)
        let upload = try await gateway.put(file.path, as: "a.txt")
        try await gateway.stop()

        #expect(before.hasPrefix("sha256 Fingerprint="))
        #expect(after.hasPrefix("sha256 Fingerprint="))
        #expect(before != after)
        let current = try await Command.runAsync("openssl", ["x509", "-noout", "-fingerprint", "-sha256", "-in", "\(gateway.home)/pki/server.crt"])
        #expect(after == current.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(upload.status == 201)
    }
}
