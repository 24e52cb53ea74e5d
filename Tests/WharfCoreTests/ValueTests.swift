import Foundation
import Testing
import WharfCore

@Suite struct PartnerNameTests {
    @Test(arguments: ["acme", "a", "acme-eu-2", "0day", String(repeating: "a", count: 63)])
    func slugsAreAccepted(_ name: String) throws {
        #expect(try PartnerName(name).rawValue == name)
    }

    @Test(arguments: ["", "Acme", "-acme", "acme_eu", "acme eu", "acme/x", "../x", "é", String(repeating: "a", count: 64)])
    func nonSlugsAreRefused(_ name: String) {
        #expect(throws: WharfError.self) { try PartnerName(name) }
    }
}

@Suite struct CertificateFingerprintTests {
    static let hex = "ab1a8edbd1df8d03a6fe08dd08ec83a2ec9f61138bed2113ea19e1542c803ef3"

    @Test(arguments: [
        hex,
        hex.uppercased(),
        "sha256 Fingerprint=AB:1A:8E:DB:D1:DF:8D:03:A6:FE:08:DD:08:EC:83:A2:EC:9F:61:13:8B:ED:21:13:EA:19:E1:54:2C:80:3E:F3",
        "sha256:" + hex,
    ])
    func formsOperatorsCopyAreAccepted(_ text: String) throws {
        #expect(try CertificateFingerprint(parsing: text).hex == Self.hex)
    }

    @Test(arguments: ["", "zz", String(hex.dropLast()), hex + "00", String(hex.dropLast()) + "g"])
    func othersAreRefused(_ text: String) {
        #expect(throws: WharfError.self) { try CertificateFingerprint(parsing: text) }
    }

    @Test func colonFormRoundTrips() throws {
        let fingerprint = try CertificateFingerprint(parsing: Self.hex)
        #expect(try CertificateFingerprint(parsing: fingerprint.colonSeparated) == fingerprint)
        #expect(CertificateFingerprint(digest: [0x00, 0x0f, 0xf0, 0xff]).hex == "000ff0ff")
    }
}

@Suite struct PublicKeyPinTests {
    @Test func curlFormIsAccepted() throws {
        let pin = "sha256//" + Data(repeating: 7, count: 32).base64EncodedString()
        #expect(try PublicKeyPin(parsing: pin).rawValue == pin)
        #expect(PublicKeyPin(spkiDigest: Array(repeating: 7, count: 32)).rawValue == pin)
    }

    @Test(arguments: ["", "sha256//", "sha256//not base64!", "sha1//" + Data(count: 32).base64EncodedString(), "sha256//" + Data(count: 20).base64EncodedString()])
    func othersAreRefused(_ text: String) {
        #expect(throws: WharfError.self) { try PublicKeyPin(parsing: text) }
    }
}

@Suite struct OutboundURLTests {
    @Test func httpsURLsAreAcceptedWithoutTrailingSlash() throws {
        #expect(try OutboundURL(parsing: "https://files.acme.example:8443/inbox/").rawValue == "https://files.acme.example:8443/inbox")
    }

    @Test(arguments: ["", "files.acme.example", "http://files.acme.example", "https://", "https://user:pw@acme.example", "https://acme.example/?q=1", "ftp://acme.example"])
    func othersAreRefused(_ text: String) {
        #expect(throws: WharfError.self) { try OutboundURL(parsing: text) }
    }
}

@Suite struct InboundIdentityTests {
    let fingerprint = InboundIdentity.Kind.fingerprint(CertificateFingerprint(digest: Array(repeating: 1, count: 32)))

    @Test func windowBoundsAreHalfOpen() throws {
        let start = Date(timeIntervalSince1970: 1_000)
        let end = Date(timeIntervalSince1970: 2_000)
        let identity = try InboundIdentity(fingerprint, notBefore: start, notAfter: end)
        #expect(!identity.isValid(at: start.addingTimeInterval(-1)))
        #expect(identity.isValid(at: start))
        #expect(identity.isValid(at: end.addingTimeInterval(-1)))
        #expect(!identity.isValid(at: end))
        #expect(try InboundIdentity(fingerprint).isValid(at: .distantFuture))
    }

    @Test func aWindowThatEndsBeforeItStartsIsRefused() {
        #expect(throws: WharfError.self) {
            try InboundIdentity(fingerprint, notBefore: Date(timeIntervalSince1970: 2), notAfter: Date(timeIntervalSince1970: 1))
        }
    }
}

@Suite struct ByteSizeTests {
    @Test(arguments: [("1", Int64(1)), ("512K", 512 << 10), ("10M", 10 << 20), ("1G", 1 << 30), ("2 GiB", 2 << 30), ("3mb", 3 << 20)])
    func sizesParse(_ text: String, _ bytes: Int64) throws {
        #expect(try ByteSize.parse(text) == bytes)
    }

    @Test(arguments: ["", "0", "-1", "1X", "G", "99999999999T"])
    func nonSizesAreRefused(_ text: String) {
        #expect(throws: WharfError.self) { try ByteSize.parse(text) }
    }

    @Test func sizesAreDescribedInTheLargestEvenUnit() {
        #expect(ByteSize.describe(1 << 30) == "1 GiB")
        #expect(ByteSize.describe(1536 << 10) == "1536 KiB")
        #expect(ByteSize.describe(1000) == "1000 bytes")
    }
}

@Suite struct ReceiptIDTests {
    @Test func anIDIsItsUTCSecondThenEightHexDigits() throws {
        let id = Receipt.newID(at: Date(timeIntervalSince1970: 1_700_000_000.9))
        #expect(id.hasPrefix("20231114T221320Z-"))
        #expect(id.count == "20231114T221320Z-".count + 8)
        #expect(Receipt.newID(at: Date(timeIntervalSince1970: 1_704_067_199)).hasPrefix("20231231T235959Z-"))
        #expect(Receipt.newID(at: Date(timeIntervalSince1970: 1_704_067_200)).hasPrefix("20240101T000000Z-"))
    }
}
