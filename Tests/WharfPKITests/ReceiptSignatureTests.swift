import Foundation
import Testing
import WharfPKI

@Suite struct ReceiptSignatureTests {
    @Test(arguments: KeyType.allCases)
    func aSignatureVerifiesAgainstItsCertificateOnlyAndCarriesThePayload(keyType: KeyType) throws {
        let server = try CertificateAuthority.create(commonName: "wharf.example", keyType: keyType, days: 30).keyed
        let other = try CertificateAuthority.create(commonName: "other.example", keyType: keyType, days: 30).keyed
        let payload = #"{"filename":"a.xml","id":"r1","size":1}"#
        let jws = try ReceiptSigner(server).sign(payload)
        let header = try #require(String(jws.split(separator: ".")[0]).data(usingBase64URL: ()))
        #expect(String(decoding: header, as: UTF8.self).contains(keyType == .p256 ? "\"ES256\"" : "\"RS256\""))
        let verified = try ReceiptSignature.verify(jws, among: [other.certificate, server.certificate])
        #expect(verified.payload == payload && verified.certificate == server.certificate)
        #expect(throws: (any Error).self) { try ReceiptSignature.verify(jws, among: [other.certificate]) }
        // Another payload under the same signature.
        let parts = jws.split(separator: ".").map(String.init)
        let swapped = [parts[0], try ReceiptSigner(server).sign(#"{"id":"r2"}"#).split(separator: ".").map(String.init)[1], parts[2]].joined(separator: ".")
        #expect(throws: (any Error).self) { try ReceiptSignature.verify(swapped, among: [server.certificate]) }
    }
}

extension String {
    fileprivate func data(usingBase64URL: ()) -> Data? {
        var text = replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Data(base64Encoded: text)
    }
}
