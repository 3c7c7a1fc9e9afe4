# Two colours, blue and green: Auto Scaling groups that share one launch
# template on its "$Latest" version, each in its own target group, and an SSM
# parameter that names their image (image_id = "resolve:ssm:/web/ami").
# Blue is live; green has no instances between deploys. Terraform owns all
# of it; phoenix owns the image, which it changes by moving the parameter.
#
# phoenix deploys with strategy "blue-green" { return_home = true }: green
# comes up on the new AMI (on a version of phoenix's with the AMI written
# out), takes the traffic in steps and must stay healthy; once it has passed
# that gate, the parameter moves, blue comes up on the new AMI, takes all the
# traffic back, and green returns to 0. So every capacity, the rule's weights
# and each group's "$Latest" are as written here after every deploy and
# rollback, and no ignore_changes is needed but the parameter's value. See
# docs/terraform.md.

resource "aws_ssm_parameter" "ami" {
  name        = "/${var.name}/ami"
  description = "The AMI the ${var.name} web servers launch. phoenix moves it at each deploy and rollback."
  type        = "String"
  data_type   = "aws:ec2:image"
  value       = var.ami_id

  lifecycle {
    # phoenix writes each image that passes the gate as a new version, and
    # phoenix rollback writes the one before back. Terraform's value counts
    # for the first apply only: without this, the next apply would put
    # var.ami_id back and every launch from then on would use that image.
    ignore_changes = [value]
  }
}

resource "aws_security_group" "web" {
  name        = "${var.name}-web"
  description = "The ${var.name} web servers"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "The app, from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "web_https" {
  security_group_id = aws_security_group.web.id
  description       = "HTTPS to AWS APIs and the app's dependencies"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_launch_template" "web" {
  name                   = var.name
  image_id               = "resolve:ssm:${aws_ssm_parameter.ami.name}"
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.web.id]
  user_data              = base64encode(templatefile("${path.module}/user-data.sh.tftpl", { port = var.app_port }))

  # A change made here becomes the template's default version too; phoenix
  # never changes the default version of a template whose group is on
  # "$Latest" (default_version is computed when update_default_version is
  # set, so it does not diff either way).
  update_default_version = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name    = var.name
      Service = var.name
    }
  }

  # No ignore_changes: the provider reads the template's latest version, and
  # once a deploy has an outcome phoenix leaves a copy of the version the
  # colours were on, this one, as the latest version: the same image_id
  # (resolve:ssm:…), the same description (none) and every other argument
  # as Terraform wrote them. A change made here (a new instance type) makes
  # a new version that still names the parameter, and the next deploy brings
  # it to both colours.
}

resource "aws_autoscaling_group" "blue" {
  name                      = "${var.name}-blue"
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.blue.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60

  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }

  tag {
    key                 = "Service"
    value               = var.name
    propagate_at_launch = true
  }

  # No ignore_changes: with return_home a deploy ends with blue at this
  # capacity, on "$Latest". (If you add scaling policies, ignore
  # desired_capacity as usual: they change it, not phoenix.)
}

resource "aws_autoscaling_group" "green" {
  name                      = "${var.name}-green"
  min_size                  = 0
  max_size                  = var.max_size
  desired_capacity          = 0
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.green.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60

  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }

  tag {
    key                 = "Service"
    value               = var.name
    propagate_at_launch = true
  }

  # No ignore_changes: green has instances only while a deploy runs, and
  # is back at 0 when it has an outcome.
}
