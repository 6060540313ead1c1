import duotoken_verify
from duotoken_verify.drf import DuotokenAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView


class AskVerify(DuotokenAuthentication):
    options = {"REVOCATION": "verify"}


class AskIntrospect(DuotokenAuthentication):
    options = {"REVOCATION": "introspect"}


class Orders(APIView):
    """Signature and claims only: the default."""

    def get(self, request):
        return Response(
            {
                "user_id": request.user.id,
                "session_id": request.auth.session_id,
                "package": duotoken_verify.__file__,
                "version": duotoken_verify.__version__,
            }
        )

    def post(self, request):
        return Response({"created": True, "owner": request.user.id}, status=201)


class OrdersAskingVerify(Orders):
    authentication_classes = (AskVerify,)


class OrdersAskingIntrospect(Orders):
    authentication_classes = (AskIntrospect,)
