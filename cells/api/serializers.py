"""Input shapes of the developer API. Types and formats only; policy rules live in cells.services."""
from rest_framework import serializers

SLUG = r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$"
HOST = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
IMAGE = r"^[a-z0-9]+([._/:@-][a-zA-Z0-9_.-]+)*$"


class StrictSerializer(serializers.Serializer):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"request": ["must be a JSON object"]})
        unknown = sorted(set(data) - set(self.fields))
        errors = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)
        for key in unknown:
            errors[key] = [f"unknown field; known fields: {', '.join(self.fields)}"]
        if errors:
            raise serializers.ValidationError(errors)
        return value


class CellFields(StrictSerializer):
    cell = serializers.RegexField(SLUG, max_length=64, help_text="A cell of the policy's registry, e.g. payments.")
    environment = serializers.RegexField(SLUG, max_length=64, help_text="One of the cell's environments, e.g. prod.")
    tier = serializers.CharField(max_length=16, required=False, help_text="C0, C1 or C2 (required for a new cell environment).")
    drProfile = serializers.CharField(max_length=32, required=False, help_text="gold, silver or bronze; the tier's default if omitted.")


class MySQLRequestSerializer(CellFields):
    size = serializers.CharField(max_length=16, required=False, help_text="small, medium or large; the tier's default if omitted.")
    storageGB = serializers.IntegerField(min_value=1, max_value=65536, required=False)
    ha = serializers.BooleanField(required=False, default=None, allow_null=True)


class AppSpecSerializer(StrictSerializer):
    image = serializers.RegexField(IMAGE, max_length=300, help_text="Container image, e.g. ghcr.io/acme/payments:1.0")


class TrafficSpecSerializer(StrictSerializer):
    publicHost = serializers.RegexField(HOST, max_length=253, error_messages={"invalid": "must be a DNS host name like payments.prod.company.com"})
    mode = serializers.ChoiceField(choices=["active-passive"], required=False, default="active-passive")


class AppRequestSerializer(CellFields):
    app = AppSpecSerializer()
    traffic = TrafficSpecSerializer()


class ReplaceSerializer(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
