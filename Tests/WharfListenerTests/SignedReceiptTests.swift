import Foundation
import Testing
import WharfTestSupport

/// Every upload's receipt is signed with Wharf's server key: a partner checks it with
/// openssl alone, an auditor with `wharf receipt verify`, also after the server certificate
/// was reissued with a new key.
@Suite(.serialized) struct SignedReceiptTests {
    /// The README's openssl steps for an ES256 receipt signature, as the README has them:
    /// split the JWS, turn the raw r‖s into DER, verify the signing input with the server
    /// certificate's key, write out the signed receipt.
    static func opensslSteps() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.range(of: "**Signed receipts.**"))
        let start = try #require(readme.range(of: "```sh\n", range: section.upperBound..<readme.endIndex))
        let end = try #require(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        return "set -eu\n" + readme[start.upperBound..<end.lowerBound].split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
    }

    func header(_ name: String, in path: String) throws -> String? {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\r\n")
            .first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
            .map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    @Test func aReceiptIsSignedAndVerifiedByOpenSSLAndByWharfAlsoAfterTheServerKeyChanged() async throws {
        let gateway = try await TestGateway.start()
        let directory = gateway.fixture.directory
        let file = try gateway.randomFile("invoice.xml", size: 2_000)
        let headers = directory.file("headers.txt")
        let upload = try await gateway.put(file.path, as: "invoice.xml", headers: ["Idempotency-Key: k1"] + [])
        #expect(upload.status == 201)
        let again = try await gateway.curl(["-D", headers, "-H", "Idempotency-Key: k1", "--upload-file", file.path, gateway.url("/inbox/invoice.xml")])
        #expect(again.status == 200, "a replay answers the first receipt")
        let signature = try #require(try header("Wharf-Receipt-Signature", in: headers))
        let receipt = try #require(try gateway.registry.receipts(partner: "acme", limit: 1).first)
        #expect(receipt.signature == signature, "the replay carries the stored signature")

        // The partner's check, with openssl: the signed payload is exactly the body.
        try directory.write("receipt.sig", signature)
        try FileManager.default.copyItem(atPath: "\(gateway.home)/pki/server.crt", toPath: directory.file("wharf-server.crt"))
        let checked = try await Command.runAsync("sh", ["-c", "cd '\(directory.path)' && \(try Self.opensslSteps())"])
        #expect(checked.succeeded && checked.stdout.contains("Verified OK"), "\(checked.stdout)\(checked.stderr)")
        #expect(try String(contentsOfFile: directory.file("signed-receipt.json"), encoding: .utf8) == again.body)

        // The auditor's check, with Wharf; a changed receipt or signature is refused.
        let exported = try await gateway.fixture.succeed("receipt", "export", receipt.id).stdout
        let saved = try directory.write("receipt.json", exported)
        let verified = try await gateway.fixture.succeed("receipt", "verify", saved).stdout
        #expect(verified.contains("valid: signed by Wharf's current server certificate") && verified.contains(receipt.id), "\(verified)")
        let changed = try directory.write("changed.json", exported.replacingOccurrences(of: "\"size\":2000", with: "\"size\":2001"))
        let refused = try await gateway.fixture.wharf("receipt", "verify", changed)
        #expect(refused.status != 0 && refused.stderr.contains("for another receipt"), "\(refused.stderr)")
        // One character of the signature's middle changed (not the last, whose low bits are padding).
        var characters = Array(signature)
        let position = characters.count - 20
        characters[position] = characters[position] == "A" ? "B" : "A"
        let forged = try directory.write("forged.sig", String(characters))
        let badSignature = try await gateway.fixture.wharf("receipt", "verify", forged)
        #expect(badSignature.status != 0 && badSignature.stderr.contains("does not match"), "\(badSignature.stderr)")

        // A new server key: the old receipt still verifies, against the kept certificate.
        try await gateway.fixture.succeed("ca", "reissue-server", "--new-key")
        let later = try await gateway.fixture.succeed("receipt", "verify", saved).stdout
        #expect(later.contains("valid: signed by Wharf's earlier server certificate"), "\(later)")
        try await gateway.stop()
    }
}
