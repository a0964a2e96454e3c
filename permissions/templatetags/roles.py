from django import template

from permissions.roles import user_roles as _user_roles

register = template.Library()


@register.simple_tag
def user_roles(user) -> list[str]:
    """`{% user_roles request.user as roles %}`: the built-in roles the user holds."""
    return _user_roles(user)
