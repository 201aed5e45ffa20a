"""The takeover's EC2 client (takeover.py): the `aws ec2` command lines the notify script writes become the EC2
Query API's parameters; anything else is refused before a request is made. The requests themselves are
checked against moto's EC2 in test/notify-script-moto.test.ts."""
import io
import unittest
from contextlib import redirect_stderr

from imaging_lb_agent import takeover as ec2

GLOBALS = ["--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:1", "--output", "text",
           "--cli-connect-timeout", "5", "--cli-read-timeout", "5"]


class CommandLines(unittest.TestCase):
    def test_assign_private_ip_addresses(self):
        action, params, settings = ec2.parse(["assign-private-ip-addresses", "--network-interface-id", "eni-0a",
                                              "--private-ip-addresses", "10.0.2.100", "10.0.2.101", "--allow-reassignment", *GLOBALS])
        self.assertEqual(action, "AssignPrivateIpAddresses")
        self.assertEqual(params, [("NetworkInterfaceId", "eni-0a"), ("PrivateIpAddress.1", "10.0.2.100"),
                                  ("PrivateIpAddress.2", "10.0.2.101"), ("AllowReassignment", "true")])
        self.assertEqual(settings["--region"], "eu-west-1")
        self.assertEqual(settings["--endpoint-url"], "http://127.0.0.1:1")

    def test_associate_address_with_and_without_a_private_ip(self):
        _, params, _ = ec2.parse(["associate-address", "--allocation-id", "eipalloc-1", "--network-interface-id", "eni-0a",
                                  "--private-ip-address", "10.0.2.102", "--allow-reassociation"])
        self.assertIn(("PrivateIpAddress", "10.0.2.102"), params)
        action, params, _ = ec2.parse(["associate-address", "--allocation-id", "eipalloc-1", "--network-interface-id", "eni-0a",
                                       "--allow-reassociation"])
        self.assertEqual(action, "AssociateAddress")
        self.assertEqual(params, [("AllocationId", "eipalloc-1"), ("NetworkInterfaceId", "eni-0a"), ("AllowReassociation", "true")])

    def test_replace_route(self):
        action, params, _ = ec2.parse(["replace-route", "--route-table-id", "rtb-1", "--destination-cidr-block", "10.240.0.100/32",
                                       "--network-interface-id", "eni-0b"])
        self.assertEqual(action, "ReplaceRoute")
        self.assertEqual(dict(params), {"RouteTableId": "rtb-1", "DestinationCidrBlock": "10.240.0.100/32", "NetworkInterfaceId": "eni-0b"})

    def test_refused_before_any_request(self):
        for argv, words in [
            (["terminate-instances", "--instance-ids", "i-1"], "unknown subcommand"),
            (["replace-route", "--route-table-id", "rtb-1", "--network-interface-id", "eni-0b"], "missing DestinationCidrBlock"),
            (["replace-route", "--route-table-id", "rtb-1", "rtb-2", "--destination-cidr-block", "x", "--network-interface-id", "e"], "takes one value"),
            (["assign-private-ip-addresses", "--network-interface-id", "eni-0a", "--private-ip-addresses"], "one or more values"),
            (["assign-private-ip-addresses", "--network-interface-id", "eni-0a", "--private-ip-addresses", "10.0.2.1", "--instance-id", "i-1"], "unknown option"),
            (["associate-address", "--allocation-id", "a", "--network-interface-id", "e", "--allow-reassociation", "yes"], "takes no value"),
        ]:
            with self.subTest(argv=argv):
                with self.assertRaisesRegex(ec2.UsageError, words):
                    ec2.parse(argv)

    def test_a_refused_command_line_exits_255_and_says_why(self):
        stderr = io.StringIO()
        with redirect_stderr(stderr):
            self.assertEqual(ec2.main(["replace-route", "--route-table-id", "rtb-1"]), 255)
        self.assertIn("imaging-lb takeover: replace-route: missing DestinationCidrBlock, NetworkInterfaceId", stderr.getvalue())


if __name__ == "__main__":
    unittest.main()
