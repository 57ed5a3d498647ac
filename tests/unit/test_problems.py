from shared.problems import Problem, field_errors


def test_nested_marshmallow_messages_flatten_to_field_paths():
    messages = {"billing_address": {"city": ["Missing data for required field."]}, "company_id": ["Bad."]}
    assert field_errors(messages) == [
        {"field": "billing_address.city", "message": "Missing data for required field."},
        {"field": "company_id", "message": "Bad."},
    ]


def test_a_problem_has_the_rfc_9457_members_and_a_stable_type():
    body = Problem(409, "customer-exists", "Customer exists", "Taken.", customer_number="100001").to_dict()
    assert body == {
        "type": "urn:customer-center:problem:customer-exists",
        "title": "Customer exists",
        "status": 409,
        "detail": "Taken.",
        "customer_number": "100001",
    }
