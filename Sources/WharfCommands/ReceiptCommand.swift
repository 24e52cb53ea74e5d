import ArgumentParser
import Foundation
import WharfCore
import WharfPKI

/// `wharf receipt`: the signed receipts of uploads, for partners and auditors.
struct ReceiptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipt",
        abstract: "Export and verify signed receipts (of uploads, and of pull partners' acknowledgements).",
        discussion: """
            Every receipt Wharf answers an upload with is signed with its server key: the \
            `Wharf-Receipt-Signature` header holds a JWS (ES256 for a P-256 key, RS256 for RSA) \
            whose payload is exactly the receipt's JSON, naming the server certificate by its \
            SHA-256 (x5t#S256). Earlier server certificates stay in pki/server-history/, so a \
            receipt can still be verified after `wharf ca reissue-server`.
            """,
        subcommands: [Export.self, Verify.self]
    )

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a receipt with its signature, as `receipt verify` reads it: {\"receipt\": …, \"signature\": …}."
        )

        @OptionGroup var home: HomeOptions

        @Argument(help: ArgumentHelp("The receipt's id.", valueName: "id"))
        var id: String

        func run() throws {
            guard let receipt = try home.resolved.openStore().receipt(id: id) else {
                throw WharfError(.notFound, "no receipt \(EscapedText.terminal(id))", fix: "`wharf inbox list` shows the receipts")
            }
            guard let signature = receipt.signature else {
                throw WharfError(.notFound, "receipt \(receipt.id) was issued before Wharf signed receipts, so it has no signature")
            }
            let signed = try ReceiptSignature.payload(of: signature)
            Console.printJSON("{\"receipt\":\(signed),\"signature\":\(EscapedText.json(signature))}")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a receipt's signature against this home's server certificates, current and earlier.",
            discussion: """
                FILE holds {"receipt": …, "signature": …} (as `receipt export` prints it: the \
                response body and its Wharf-Receipt-Signature header), or the signature alone. \
                Exit status 0 only if the signature is Wharf's and the receipt is the one signed.
                """
        )

        @OptionGroup var home: HomeOptions

        @Argument(help: ArgumentHelp("The receipt and its signature, as JSON; - for standard input.", valueName: "file"))
        var file: String

        func run() throws {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let read = FileManager.default.contents(atPath: file) else {
                    throw WharfError(.fileSystem, "cannot read \(EscapedText.terminal(file))", fix: "check the path")
                }
                data = read
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let signature: String
            var claimed: Any?
            if text.hasPrefix("{") {
                guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let value = object["signature"] as? String else {
                    throw WharfError.invalid("\(EscapedText.terminal(file)) is JSON without a \"signature\" string", fix: "give {\"receipt\": …, \"signature\": …}, as `wharf receipt export` prints it")
                }
                (signature, claimed) = (value, object["receipt"])
            } else {
                signature = text
            }
            let certificates = try home.resolved.pki.serverCertificates()
            let verified = try ReceiptSignature.verify(signature, among: certificates)
            let signed = try JSONSerialization.jsonObject(with: Data(verified.payload.utf8)) as? NSDictionary
            if let claimed {
                guard let claimed = claimed as? NSDictionary, let signed, claimed.isEqual(signed) else {
                    throw WharfError.invalid("the signature is Wharf's, but for another receipt than the one in \(EscapedText.terminal(file))")
                }
            }
            let current = verified.certificate == certificates.first
            Console.print("valid: signed by Wharf's \(current ? "current" : "earlier") server certificate \(verified.certificate.subject) (sha256 \(verified.certificate.fingerprint.hex))")
            // An upload's receipt, or a pull delivery's acknowledgement: whatever was signed.
            for key in (signed?.allKeys.compactMap { $0 as? String } ?? []).sorted() {
                Console.print("  \(key.padding(toLength: 12, withPad: " ", startingAt: 0)) \(signed?[key].map { "\($0)" } ?? "")")
            }
        }
    }
}
