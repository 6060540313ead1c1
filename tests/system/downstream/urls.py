from django.urls import path

from . import views

urlpatterns = [
    path("orders/", views.Orders.as_view()),
    path("orders/checked-by-verify/", views.OrdersAskingVerify.as_view()),
    path("orders/checked-by-introspect/", views.OrdersAskingIntrospect.as_view()),
]
