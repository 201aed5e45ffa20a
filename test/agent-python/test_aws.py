"""The agent's AWS client (aws.py): its Signature Version 4 against AWS's published example and against
botocore's signer (the AWS CLI's), and what it makes of errors. The calls themselves run against moto in the
fault bed (test/agent/faults.test.ts), where moto checks every signature (its IAM authentication on)."""
import datetime
import os
import unittest

from imaging_lb_agent import aws

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
except ImportError as missing:  # a tool the tests need is missing: fail, never skip
    raise SystemExit(f"botocore is required for the SigV4 cross-check ({missing}): it comes with the AWS CLI (pip install awscli)")

NOW = datetime.datetime(2013, 5, 24, 0, 0, 0, tzinfo=datetime.timezone.utc)
AKID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class SigV4(unittest.TestCase):
    def test_the_s3_get_object_example_of_the_s3_documentation(self):
        # "Example: GET Object" of the S3 API reference (Signature Version 4, header-based auth).
        headers = aws.sign_v4("GET", "https://examplebucket.s3.amazonaws.com/test.txt", {"range": "bytes=0-9"}, b"", "s3",
                              "us-east-1", AKID, SECRET, None, NOW)
        self.assertTrue(headers["authorization"].endswith("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
                        headers["authorization"])

    def botocore_signature(self, method, url, headers, body, service, token=None):
        request = botocore.awsrequest.AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        creds = botocore.credentials.Credentials(AKID, SECRET, token)
        signer = botocore.auth.S3SigV4Auth(creds, service, "eu-west-1") if service == "s3" else botocore.auth.SigV4Auth(creds, service, "eu-west-1")
        signer._get_datetime = lambda: NOW  # botocore's own hook for the signing time
        original = datetime.datetime

        class Frozen(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return NOW.replace(tzinfo=None)

            @classmethod
            def now(cls, tz=None):
                return NOW if tz else NOW.replace(tzinfo=None)

        botocore.auth.datetime.datetime = Frozen
        try:
            signer.add_auth(request)
        finally:
            botocore.auth.datetime.datetime = original
        return request.headers["Authorization"]

    def test_same_signature_as_botocore(self):
        cases = [
            ("GET", "https://imaging-lb-prod-123456789012.s3.eu-west-1.amazonaws.com/prod/nodes/lb-a/manifest.json", {"If-None-Match": '"abc"'}, b"", "s3", None),
            ("PUT", "https://imaging-lb-prod-123456789012.s3.eu-west-1.amazonaws.com/prod/status/lb-a.json", {"content-type": "application/json"}, b'{"a": 1}\n', "s3", "TOKEN/xyz=="),
            ("POST", "https://kms.eu-west-1.amazonaws.com/", {"content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.Decrypt"}, b'{"CiphertextBlob": "AQ=="}', "kms", "T"),
            ("POST", "https://secretsmanager.eu-west-1.amazonaws.com/", {"content-type": "application/x-amz-json-1.1", "x-amz-target": "secretsmanager.GetSecretValue"}, b"{}", "secretsmanager", None),
            ("POST", "https://monitoring.eu-west-1.amazonaws.com/", {"content-type": "application/x-amz-json-1.0", "x-amz-target": "GraniteServiceVersion20100801.PutMetricData"},
             b'{"Namespace":"imaging-lb","MetricData":[]}', "monitoring", "T"),
            ("GET", "http://127.0.0.1:5000/bucket/prefix/key%20with%20space", {}, b"", "s3", None),
        ]
        for method, url, headers, body, service, token in cases:
            ours = aws.sign_v4(method, url, headers, body, service, "eu-west-1", AKID, SECRET, token, NOW)["authorization"]
            theirs = self.botocore_signature(method, url, headers, body, service, token)
            self.assertEqual(ours.split("Signature=")[1], theirs.split("Signature=")[1], f"{method} {url}")


class Errors(unittest.TestCase):
    def test_retryable_or_not(self):
        session = aws.Session("eu-west-1")
        throttled = session._error("kms", aws.Response(400, {}, b'{"__type": "ThrottlingException", "message": "slow down"}'))
        self.assertTrue(throttled.retryable)
        self.assertEqual(throttled.code, "ThrottlingException")
        denied = session._error("kms", aws.Response(400, {}, b'{"__type": "com.amazon#InvalidCiphertextException"}'))
        self.assertEqual((denied.code, denied.retryable), ("InvalidCiphertextException", False))
        busy = session._error("s3", aws.Response(503, {}, b"<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>"))
        self.assertEqual((busy.code, busy.retryable), ("SlowDown", True))

    def test_endpoints(self):
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDWATCH"):
            os.environ.pop(name, None)
        self.assertEqual(aws.Session("eu-west-1").endpoint("kms"), "https://kms.eu-west-1.amazonaws.com")
        self.assertEqual(aws.Session("eu-west-1").endpoint("cloudwatch"), "https://monitoring.eu-west-1.amazonaws.com",
                         "CloudWatch's host is monitoring.<region> (the VPC endpoint's service name too)")
        self.assertEqual(aws.Session("cn-north-1").endpoint("s3"), "https://s3.cn-north-1.amazonaws.com.cn")
        self.assertEqual(aws.Session("eu-west-1")._s3_url("imaging-lb-x", "p/k.json"), "https://imaging-lb-x.s3.eu-west-1.amazonaws.com/p/k.json")
        self.assertEqual(aws.Session("eu-west-1")._s3_url("dotted.bucket", "k"), "https://s3.eu-west-1.amazonaws.com/dotted.bucket/k")


if __name__ == "__main__":
    unittest.main()


class CredentialsExpiration(unittest.TestCase):
    """IMDS writes `Expiration` as ISO 8601 UTC; some sources add milliseconds (the boot test's IMDS did, and
    the agent's first apply crashed on it)."""

    def test_with_and_without_fractional_seconds(self):
        whole = aws._expiration("2026-12-07T08:29:27Z")
        self.assertEqual(whole, datetime.datetime(2026, 12, 7, 8, 29, 27, tzinfo=datetime.timezone.utc).timestamp())
        self.assertAlmostEqual(aws._expiration("2026-12-07T08:29:27.255Z"), whole + 0.255, places=3)
        self.assertEqual(aws._expiration("2026-12-07T08:29:27+00:00"), whole)
        self.assertIsNone(aws._expiration(None))
        self.assertIsNone(aws._expiration(""))

    def test_an_unreadable_time_is_a_retryable_error_not_a_crash(self):
        with self.assertRaises(aws.AwsError) as caught:
            aws._expiration("tomorrow")
        self.assertTrue(caught.exception.retryable)
        self.assertEqual(caught.exception.code, "BadCredentials")
